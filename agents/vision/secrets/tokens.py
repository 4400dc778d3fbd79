"""Vendor credential formats: documented prefixes, lengths, alphabets and checksums.

Each detector name (the `detectors:` of a `secret` rule) maps to the formats of one
vendor. A format is a regular expression with named groups — `token` (the secret;
the whole match by default), `prefix` (the public part shown in findings), `body`
(the random part the placeholder model judges; the token less its prefix by
default) — and, where the vendor built one in, a check (GitHub's and npm's CRC32,
age's bech32, the JSON inside a JWT or a Sentry token, the user id inside a Discord
bot token). Formats without a prefix of their own (an AWS secret key, Datadog's hex
keys) are read only where a name says whose they are.

Sources: each vendor's documentation of its token format; gitleaks' and
detect-secrets' public rule sets were read for comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

from agents.vision.secrets.checksums import (
    has_crc32_base62_suffix,
    is_bech32,
    is_discord_bot_token,
    is_jwt,
    json_object,
)
from agents.vision.secrets.placeholders import entropy

MASK = "****"

_B = r"(?<![A-Za-z0-9_])"  # a token starts here: not inside a longer word
_E = r"(?![A-Za-z0-9_])"  # and ends here
_E_DASH = r"(?![A-Za-z0-9_-])"
# Between a name and its value: `=`, `:`, `:=`, `?=`, `.=`, `=>`, a JSON colon, an XML `>`,
# a call's comma, with quotes and spaces around.
_ASSIGN = r"""[\s"'`\]]*(?:[:?.+]*=>?|:|>|,)[\s"'`]*"""


@dataclass(frozen=True, slots=True)
class Token:
    """One credential found in a line: where it is, and what may be shown of it."""

    start: int
    end: int
    secret: str  # kept only to blank it out of the line; never shown
    shown: str
    body: str


MatchCheck = Callable[[re.Match[str]], bool]


@dataclass(frozen=True)
class TokenFormat:
    label: str
    source: str  # the regular expression, compiled on first use: most never meet their needles
    needles: tuple[str, ...]  # one of them occurs in any text the pattern can match; () for any text
    folded: bool = False  # the needles are lower case, looked for in the lower-cased text
    check: MatchCheck | None = None
    shown: str | None = None  # what a finding shows, when not the prefix and a mask

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.source)

    def present(self, text: str, lowered: str) -> bool:
        haystack = lowered if self.folded else text
        return not self.needles or any(needle in haystack for needle in self.needles)

    def tokens(self, text: str) -> Iterator[Token]:
        groups = self.pattern.groupindex
        for match in self.pattern.finditer(text):
            if self.check is not None and not self.check(match):
                continue
            key = "token" if "token" in groups else 0
            secret = match.group(key)
            prefix = match.group("prefix") if "prefix" in groups and match.group("prefix") else ""
            body = match.group("body") if "body" in groups and match.group("body") else secret[len(prefix) :]
            shown = self.shown if self.shown is not None else prefix + MASK
            yield Token(match.start(key), match.end(key), secret, shown, body)


def _format(
    label: str, pattern: str, *needles: str, check: MatchCheck | None = None, shown: str | None = None
) -> TokenFormat:
    return TokenFormat(label, pattern, tuple(needles), check=check, shown=shown)


def _named(label: str, name: str, value: str, *needles: str, check: MatchCheck | None = None) -> TokenFormat:
    """A format without a prefix of its own: a `value` assigned to a name matching `name`."""
    pattern = rf"(?i:{name}){_ASSIGN}(?P<token>{value})"
    return TokenFormat(label, pattern, tuple(needles), folded=True, check=check, shown=MASK)


def _crc32(match: re.Match[str]) -> bool:
    return has_crc32_base62_suffix(match.group("body"))


def _github_classic(match: re.Match[str]) -> bool:
    body = match.group("body")
    return len(body) != 36 or has_crc32_base62_suffix(body)  # longer tokens: the length is all that is documented


def mixed_case_and_digits(value: str) -> bool:
    """Generated keys mix upper case, lower case and digits, with high entropy."""
    return (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
        and entropy(value) >= 4.0
    )


def _mixed(match: re.Match[str]) -> bool:
    return mixed_case_and_digits(match.group("token"))


def _mixed_letters(match: re.Match[str]) -> bool:
    body = match.group("body")
    return any(c.islower() for c in body) and any(c.isupper() for c in body)


def _hex_random(match: re.Match[str]) -> bool:
    """A random hex string has letters and digits both."""
    value = match.group("token") if "token" in match.re.groupindex else match.group("body")
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


_JWT_CLAIMS = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")


def _jwt(match: re.Match[str]) -> bool:
    """A signed token with registered claims, other than the documentation's sample (John Doe)."""
    token = match.group("token")
    payload = json_object(token.split(".")[1]) or {}
    sample = any(str(value).lower() in ("john doe", "1234567890") for value in payload.values())
    return is_jwt(token) and any(claim in payload for claim in _JWT_CLAIMS) and not sample


def _sentry_org_token(match: re.Match[str]) -> bool:
    payload = json_object(match.group("payload"))
    return payload is not None and "iat" in payload


def _age(match: re.Match[str]) -> bool:
    return is_bech32("age-secret-key-", match.group("body"))


def _discord(match: re.Match[str]) -> bool:
    return is_discord_bot_token(match.group("token"))


_AWS_SECRET = r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])"
_GITLAB_ROUTABLE = r"[\w-]{27,300}\.[0-9a-z]{2}\.?[0-9a-z]{7}"

AWS_KEY_ID = _format(
    "AWS access key id",
    rf"{_B}(?P<prefix>AKIA|ASIA|ABIA|ACCA)(?P<body>[A-Z2-7]{{16}}){_E}",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
)
AWS_SECRET_VALUE = re.compile(rf"(?<![A-Za-z0-9/+=])(?P<token>{_AWS_SECRET})")

FORMATS: dict[str, tuple[TokenFormat, ...]] = {
    "aws": (
        AWS_KEY_ID,
        _named(
            "AWS secret access key",
            r"aws[\w.-]{0,20}?secret[\w.-]{0,12}?key|secret[_.-]?access[_.-]?key",
            _AWS_SECRET,
            "secret",
            check=_mixed,
        ),
    ),
    "github": (
        _format(
            "GitHub token",
            rf"{_B}(?P<prefix>gh[pousr]_)(?P<body>[A-Za-z0-9]{{36,251}}){_E}",
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            check=_github_classic,
        ),
        _format(
            "GitHub token",
            rf"{_B}(?P<prefix>github_pat_)(?P<body>[A-Za-z0-9]{{22}}_[A-Za-z0-9]{{59}}){_E}",
            "github_pat_",
        ),
    ),
    "anthropic": (
        _format(
            "Anthropic API key",
            rf"{_B}(?P<prefix>sk-ant-(?:api|admin)\d\d-)(?P<body>[\w-]{{93}}AA){_E_DASH}",
            "sk-ant-",
        ),
        _format(
            "Anthropic OAuth token", rf"{_B}(?P<prefix>sk-ant-o[ar]t\d\d-)(?P<body>[\w-]{{80,300}}){_E_DASH}", "sk-ant-"
        ),
    ),
    "openai": (
        _format(
            "OpenAI API key",
            rf"{_B}(?P<prefix>sk-(?:proj|svcacct|admin|None)-)(?P<body>[\w-]{{40,300}}){_E_DASH}",
            "sk-proj-",
            "sk-svcacct-",
            "sk-admin-",
            "sk-None-",
        ),
        _format(
            "OpenAI API key",
            rf"{_B}(?P<prefix>sk-)(?P<body>[A-Za-z0-9]{{20}}T3BlbkFJ[A-Za-z0-9]{{20}}){_E}",
            "T3BlbkFJ",
        ),
    ),
    "npm": (
        _format("npm access token", rf"{_B}(?P<prefix>npm_)(?P<body>[A-Za-z0-9]{{36}}){_E}", "npm_", check=_crc32),
    ),
    "slack": (
        _format(
            "Slack token",
            rf"{_B}(?P<prefix>xox[bpeasr]-)(?P<body>(?:\d{{8,13}}-){{1,3}}[A-Za-z0-9]{{24,64}}){_E_DASH}",
            "xox",
        ),
        _format(
            "Slack app token",
            rf"{_B}(?P<prefix>xapp-)(?P<body>\d-[A-Z0-9]{{9,12}}-\d{{10,13}}-[a-f0-9]{{64}}){_E}",
            "xapp-",
        ),
        _format(
            "Slack configuration token",
            rf"{_B}(?P<prefix>xoxe(?:\.xox[bp])?-)(?P<body>\d-[A-Za-z0-9]{{140,170}}){_E}",
            "xoxe",
        ),
    ),
    "slack_webhook": (
        _format(
            "Slack webhook URL",
            r"(?P<prefix>https://hooks\.slack\.com/(?:services|workflows|triggers)/)"
            r"(?P<body>T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}/[A-Za-z0-9]{23,24})(?![A-Za-z0-9])",
            "hooks.slack.com",
        ),
    ),
    "gitlab": (
        _format(
            "GitLab token",
            rf"{_B}(?P<prefix>glpat-|gldt-|glft-|glsoat-)(?P<body>{_GITLAB_ROUTABLE}|[\w-]{{20}}){_E_DASH}",
            "glpat-",
            "gldt-",
            "glft-",
            "glsoat-",
        ),
        _format(
            "GitLab runner token",
            rf"{_B}(?P<prefix>glrt-|GR1348941)(?P<body>t\d_{_GITLAB_ROUTABLE}|[\w-]{{20}}){_E_DASH}",
            "glrt-",
            "GR1348941",
        ),
        _format("GitLab pipeline trigger token", rf"{_B}(?P<prefix>glptt-)(?P<body>[0-9a-f]{{40}}){_E}", "glptt-"),
        _format(
            "GitLab CI/CD job token",
            rf"{_B}(?P<prefix>glcbt-)(?P<body>[0-9a-zA-Z]{{1,5}}_[\w-]{{20}}){_E_DASH}",
            "glcbt-",
        ),
        _format("GitLab incoming mail token", rf"{_B}(?P<prefix>glimt-)(?P<body>[\w-]{{25}}){_E_DASH}", "glimt-"),
        _format("GitLab OAuth application secret", rf"{_B}(?P<prefix>gloas-)(?P<body>[\w-]{{64}}){_E_DASH}", "gloas-"),
        _format("GitLab agent token", rf"{_B}(?P<prefix>glagent-)(?P<body>[\w-]{{50}}){_E_DASH}", "glagent-"),
    ),
    "stripe": (
        _format(
            "Stripe secret key",
            rf"{_B}(?P<prefix>(?:sk|rk)_(?:live|test)_)(?P<body>[A-Za-z0-9]{{24,247}}){_E}",
            "sk_live_",
            "sk_test_",
            "rk_live_",
            "rk_test_",
        ),
        _format("Stripe webhook secret", rf"{_B}(?P<prefix>whsec_)(?P<body>[A-Za-z0-9+/]{{32,64}}){_E}", "whsec_"),
    ),
    "gcp_api_key": (_format("Google API key", rf"{_B}(?P<prefix>AIza)(?P<body>[\w-]{{35}}){_E_DASH}", "AIza"),),
    "jwt": (
        _format(
            "JSON Web Token",
            rf"{_B}(?P<token>(?P<prefix>eyJ)[\w-]{{8,}}\.eyJ[\w-]{{8,}}\.[\w-]{{16,}}){_E_DASH}(?!\.)",
            "eyJ",
            check=_jwt,
        ),
    ),
    "azure": (
        _format(
            "Azure AD client secret",
            r"(?<![\w~.-])(?P<token>[\w~.]{3}\dQ~[\w~.-]{31,34})(?![\w~.-])",
            "Q~",
            check=_mixed,
            shown=MASK,
        ),
    ),
    "pypi": (
        _format(
            "PyPI token",
            rf"{_B}(?P<prefix>pypi-)(?P<body>(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[\w-]{{50,}}){_E_DASH}",
            "pypi-Ag",
        ),
    ),
    "twilio": (
        _format("Twilio API key", rf"{_B}(?P<prefix>SK)(?P<body>[0-9a-f]{{32}}){_E}", "SK", check=_hex_random),
        _format(
            "Twilio account SID and auth token",
            rf"{_B}(?P<prefix>AC[0-9a-f]{{32}}:)(?P<body>[0-9a-f]{{32}}){_E}",
            "AC",
            check=_hex_random,
        ),
        _named(
            "Twilio auth token",
            r"twilio[\w.-]{0,20}?(?:auth[\w.-]{0,3}?token|secret)",
            r"[0-9a-f]{32}(?![\w-])",
            "twilio",
            check=_hex_random,
        ),
    ),
    "sendgrid": (
        _format("SendGrid API key", rf"{_B}(?P<prefix>SG\.)(?P<body>[\w-]{{22}}\.[\w-]{{43}}){_E_DASH}", "SG."),
    ),
    "huggingface": (
        _format(
            "Hugging Face token",
            rf"{_B}(?P<prefix>hf_|api_org_)(?P<body>[A-Za-z]{{34}}){_E}",
            "hf_",
            "api_org_",
            check=_mixed_letters,
        ),
    ),
    "digitalocean": (
        _format("DigitalOcean token", rf"{_B}(?P<prefix>do[opr]_v1_)(?P<body>[a-f0-9]{{64}}){_E}", "_v1_"),
    ),
    "heroku": (
        _format("Heroku API key", rf"{_B}(?P<prefix>HRKU-AA)(?P<body>[\w-]{{58}}){_E_DASH}", "HRKU-AA"),
        _named("Heroku API key", r"heroku[\w.-]{0,20}?(?:key|token|secret|password)", _UUID, "heroku"),
    ),
    "shopify": (
        _format(
            "Shopify access token",
            rf"{_B}(?P<prefix>shp(?:at|ss|ca|pa)_)(?P<body>[a-fA-F0-9]{{32}}){_E}",
            "shpat_",
            "shpss_",
            "shpca_",
            "shppa_",
        ),
    ),
    "vault": (
        _format(
            "HashiCorp Vault token",
            rf"{_B}(?P<prefix>hv[sbr]\.)(?P<body>[\w-]{{90,300}}){_E_DASH}",
            "hvs.",
            "hvb.",
            "hvr.",
        ),
    ),
    "terraform": (
        _format(
            "Terraform Cloud token",
            r"(?<![\w.])(?P<token>[a-z0-9]{14}\.atlasv1\.(?P<body>[\w=-]{60,70}))(?![\w=-])",
            ".atlasv1.",
            shown=MASK + ".atlasv1." + MASK,
        ),
    ),
    "databricks": (
        _format("Databricks token", rf"{_B}(?P<prefix>dapi)(?P<body>[a-f0-9]{{32}})(?:-\d)?{_E_DASH}", "dapi"),
    ),
    "discord": (
        _format(
            "Discord bot token",
            r"(?<![\w.-])(?P<token>[MNO][\w-]{23,27}\.[\w-]{6}\.[\w-]{27,38})(?![\w.-])",
            check=_discord,
            shown=MASK,
        ),
    ),
    "discord_webhook": (
        _format(
            "Discord webhook URL",
            r"(?P<prefix>https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/)(?P<body>\d{17,20}/[\w-]{60,68})"
            r"(?![\w-])",
            "/api/webhooks/",
        ),
    ),
    "sentry": (
        _format(
            "Sentry auth token",
            rf"{_B}(?P<prefix>sntrys_)(?P<body>(?P<payload>eyJ[A-Za-z0-9+/]{{20,600}}={{0,2}})_[A-Za-z0-9+/]{{43}}){_E}",
            "sntrys_",
            check=_sentry_org_token,
        ),
        _format("Sentry auth token", rf"{_B}(?P<prefix>sntryu_)(?P<body>[a-f0-9]{{64}}){_E}", "sntryu_"),
    ),
    "sentry_dsn": (
        _format(
            "Sentry DSN",
            r"(?P<prefix>https://)(?P<body>[a-f0-9]{32})(?::[a-f0-9]{32})?@(?:o\d+\.)?(?:ingest\.)?(?:[a-z]{2}\.)?"
            r"sentry\.io/\d+",
            "sentry.io",
        ),
    ),
    "mailgun": (
        _format(
            "Mailgun API key", rf"{_B}(?P<prefix>key-)(?P<body>[0-9a-f]{{32}}){_E_DASH}", "key-", check=_hex_random
        ),
        _format(
            "Mailgun API key",
            rf"{_B}(?P<token>[0-9a-f]{{32}}-[0-9a-f]{{8}}-[0-9a-f]{{8}}){_E_DASH}",
            check=_hex_random,
            shown=MASK,
        ),
    ),
    "datadog": (
        _named(
            "Datadog key",
            r"(?:datadog|\bdd)[\w.-]{0,20}?(?:api|app(?:lication)?)[\w.-]{0,4}?key",
            r"[a-f0-9]{40}(?![\w-])|[a-f0-9]{32}(?![\w-])",
            "datadog",
            "dd_",
            "dd-",
            check=_hex_random,
        ),
    ),
    "telegram": (
        _format(
            "Telegram bot token", r"(?:(?<=/bot)|(?<![\w:]))(?P<token>\d{8,10}:A[\w-]{34})(?![\w-])", ":A", shown=MASK
        ),
    ),
    "mailchimp": (
        _format(
            "Mailchimp API key",
            rf"{_B}(?P<token>(?P<body>[0-9a-f]{{32}})-us\d{{1,2}}){_E_DASH}",
            "-us",
            check=_hex_random,
            shown=MASK + "-us…",
        ),
    ),
    "postman": (
        _format("Postman API key", rf"{_B}(?P<prefix>PMAK-)(?P<body>[a-f0-9]{{24}}-[a-f0-9]{{34}}){_E}", "PMAK-"),
    ),
    "dockerhub": (
        _format("Docker Hub token", rf"{_B}(?P<prefix>dckr_(?:pat|oat)_)(?P<body>[\w-]{{27,32}}){_E_DASH}", "dckr_"),
    ),
    "grafana": (
        _format(
            "Grafana service account token",
            rf"{_B}(?P<prefix>glsa_)(?P<body>[A-Za-z0-9]{{32}}_[a-fA-F0-9]{{8}}){_E}",
            "glsa_",
        ),
        _format(
            "Grafana Cloud token",
            r"(?<![\w+/])(?P<prefix>glc_)(?P<body>[A-Za-z0-9+/]{32,400}={0,2})(?![\w+/=])",
            "glc_",
        ),
    ),
    "linear": (_format("Linear API key", rf"{_B}(?P<prefix>lin_api_)(?P<body>[A-Za-z0-9]{{40}}){_E}", "lin_api_"),),
    "age": (
        _format(
            "age secret key",
            rf"{_B}(?P<prefix>AGE-SECRET-KEY-1)(?P<body>[02-9AC-HJ-NP-Z]{{58}}){_E}",
            "AGE-SECRET-KEY-1",
            check=_age,
        ),
    ),
    "newrelic": (_format("New Relic user API key", rf"{_B}(?P<prefix>NRAK-)(?P<body>[A-Z0-9]{{27}}){_E}", "NRAK-"),),
    "rubygems": (_format("RubyGems API key", rf"{_B}(?P<prefix>rubygems_)(?P<body>[a-f0-9]{{48}}){_E}", "rubygems_"),),
    "supabase": (_format("Supabase access token", rf"{_B}(?P<prefix>sbp_)(?P<body>[a-f0-9]{{40}}){_E}", "sbp_"),),
    "doppler": (
        _format(
            "Doppler token",
            rf"{_B}(?P<prefix>dp\.(?:pt|st|sa|ct|scim|audit)\.)(?P<body>[A-Za-z0-9]{{40,44}}){_E}",
            "dp.",
        ),
    ),
}


def claimed(text: str, start: int, end: int) -> bool:
    """Whether a vendor format recognises something overlapping text[start:end]: what a
    vendor's rule reports (or, failing its checks, knows to be a look-alike), the
    generic rules leave alone."""
    lowered = text.lower()
    for formats in FORMATS.values():
        for token_format in formats:
            if not token_format.present(text, lowered):
                continue
            for match in token_format.pattern.finditer(text):
                key = "token" if "token" in token_format.pattern.groupindex else 0
                if match.start(key) < end and match.end(key) > start:
                    return True
    return False
