#!/usr/bin/env bash
# Entry point of .github/workflows/daily-report.yml: report the day (and any earlier day
# missing from reports/daily), post its issue, commit and push the files.
#
#   REPORT_DATE      today | yesterday | YYYY-MM-DD   (default: yesterday)
#   REPORT_CATCH_UP  how many earlier days to look back for missing reports (default: 7)
#   GITHUB_REPOSITORY, GITHUB_TOKEN                    the repository the issue goes to, and a token
#   WAOOAW_API_URL + WAOOAW_API_TOKEN, or WAOOAW_DATABASE_URL: where the data comes from
set -euo pipefail
cd "$(dirname "$0")/.."

day="${REPORT_DATE:-yesterday}"
catch_up="${REPORT_CATCH_UP:-7}"
repo="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY must name the repository the report issue goes to}"
waooaw="${WAOOAW:-.venv/bin/waooaw}"

# Secrets that are not set reach us as empty strings: treat them as unset.
for name in WAOOAW_API_URL WAOOAW_API_TOKEN WAOOAW_DATABASE_URL; do
  if [ -z "${!name:-}" ]; then unset "$name"; fi
done
if [ -z "${WAOOAW_API_URL:-}" ] && [ -z "${WAOOAW_DATABASE_URL:-}" ]; then
  echo "daily_report.sh: set WAOOAW_API_URL and WAOOAW_API_TOKEN (the app's report API)," \
       "or WAOOAW_DATABASE_URL (the store); an empty scratch database would report nothing" >&2
  exit 2
fi
if [ -n "${WAOOAW_API_URL:-}" ] && [ -z "${WAOOAW_DATABASE_URL:-}" ]; then
  # API mode: the publisher's record of what it posted goes to a scratch file (GitHub
  # itself is searched by marker, so a fresh record never duplicates an issue).
  export WAOOAW_DATABASE_URL="sqlite:///${RUNNER_TEMP:-/tmp}/waooaw-report.db"
fi

"$waooaw" report daily --date "$day" --catch-up "$catch_up" --repo "$repo" --out reports --post

git add reports/daily
if git diff --cached --quiet; then
  echo "daily_report.sh: reports/daily is unchanged, nothing to commit"
  exit 0
fi
git -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
  commit -q -m "Daily report: $day"
for _ in 1 2 3; do
  if git push -q; then exit 0; fi
  git pull -q --rebase  # another push landed first (a rerun, a merge): replay ours on top
done
echo "daily_report.sh: could not push the report after 3 attempts" >&2
exit 1
