"""The secret engine: every vendor detector with real-format positives and look-alikes,
the line shapes it reads, multi-line keys, context-aware severity, the repository's
`fixtures`, and a labelled corpus measuring recall at error level and the flag rate
on look-alikes.

Every credential here is synthesised at run time (tests/secret_samples.py), with the
vendor's checksum where it has one; none is written in this file.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter

import pytest

from agents.vision import RepoConfig, parse_config, parse_diff, resolve_packs, review
from agents.vision.config import ConfigError, extend
from agents.vision.policy import PolicyError, builtin_pack, parse_pack
from agents.vision.render import render_review_markdown, render_text, to_json
from agents.vision.secrets.checksums import crc32_base62, is_bech32
from agents.vision.secrets.context import TEST_KEY
from tests.secret_samples import (
    ALNUM,
    HEX,
    LOOK_ALIKES,
    NAMED,
    REAL,
    chars,
    github_pat,
    jwt,
    one,
    password,
    pem_body,
    private_key,
    service_account,
)
from tests.vision_support import added

SECRETS = RepoConfig(packs=["secrets"])
PACK = builtin_pack("secrets")
RULE_OF = {detector: rule.id for rule in PACK.rules for detector in rule.detectors}
WARNING_LEVEL = {"sentry_dsn"}  # public by design in browser code: reported, but not as an error
VENDORS = sorted(set(REAL) - WARNING_LEVEL)


SECRETS_PACKS = resolve_packs(SECRETS)


def review_secrets(*diffs: str, config: RepoConfig = SECRETS):
    packs = SECRETS_PACKS if config is SECRETS else resolve_packs(config)
    return review(parse_diff("".join(diffs)), {}.get, config, packs)


def errors(result) -> list[str]:
    return [f.rule for f in result.findings if f.severity == "error"]


# Line shapes a credential is written in, in the files that hold them (none a fixture).
SHAPES = [
    ("app/settings.py", 'value = "{}"'),
    ("src/client.go", 'var endpoint string = "{}"'),
    ("web/src/index.ts", "const value = '{}';"),
    ("config/app.yml", "value: {}"),
    ("config/app.json", '{{"value": "{}"}}'),
    ("conf/settings.ini", "value = {}"),
    ("Makefile", "VALUE ?= {}"),
    ("scripts/deploy.sh", 'export VALUE="{}"'),
    ("src/Main.java", 'System.setProperty("app.value", "{}");'),
    ("web.config", '<add key="Value" value="{}" />'),
    ("app/config.php", '$value .= "{}";'),
    ("deploy/values.xml", "<value>\n  {}\n</value>"),
    ("deploy/production.env", "VALUE={}"),
    ("scripts/call.sh", 'curl -H "X-Request: 1" "https://api.acme.io/v1?key={}"'),
]


# --- checksums --------------------------------------------------------------------------


def test_github_checksum_matches_the_documented_example():
    # The random part and checksum of the example in GitHub's token-format write-up.
    assert crc32_base62("zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ") == "0mLq17"


def test_bech32_accepts_the_reference_vectors_and_rejects_a_changed_character():
    assert is_bech32("a", "2uel5l")
    assert is_bech32("abcdef", "qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")
    assert not is_bech32("abcdef", "qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx")


# --- every vendor: real formats at error, look-alikes not at all ------------------------


def test_each_detector_has_its_own_rule_with_a_place_to_revoke():
    rules = [rule for rule in PACK.rules]
    assert len({rule.id for rule in rules}) == len(rules)
    assert all(len(rule.detectors) == 1 for rule in rules)
    assert len({rule.detectors[0] for rule in rules}) >= 40
    for rule in rules:
        assert rule.hint and rule.rationale, rule.id
        assert rule.severity == ("warning" if rule.id in ("secret-generic", "secret-sentry-dsn") else "error"), rule.id


@pytest.mark.parametrize("detector", sorted(REAL))
def test_each_vendor_format_is_found_whatever_it_is_assigned_to_and_its_look_alikes_are_not(detector):
    rng = random.Random(len(detector))
    for seed, (path, shape) in enumerate(SHAPES[:4]):
        secret = REAL[detector](rng)
        result = review_secrets(added(path, shape.format(secret)))
        [found] = [f for f in result.findings if f.rule == RULE_OF[detector]]
        assert found.severity == ("warning" if detector in WARNING_LEVEL else "error"), (seed, found)
        assert "****" in found.message and secret not in repr(result)
    if detector in NAMED:  # a credential without a prefix of its own: the name says whose it is
        name, value = NAMED[detector](rng)
        assert RULE_OF[detector] in errors(review_secrets(added("app/settings.py", f'{name} = "{value}"')))
        assert RULE_OF[detector] not in errors(review_secrets(added("app/settings.py", f'checksum = "{value}"')))
    for index, look_alike in enumerate(LOOK_ALIKES[detector](rng)):
        path, shape = SHAPES[index % len(SHAPES)]
        assert review_secrets(added(path, shape.format(look_alike))).findings == (), look_alike


def test_an_aws_secret_key_beside_its_key_id_needs_no_name():
    rng = random.Random(6)
    key_id, secret = REAL["aws"](rng), NAMED["aws"](rng)[1]
    for text in (f"{key_id},{secret}", f"credentials({{id: '{key_id}',\n  s: '{secret}'}})"):
        result = review_secrets(added("deploy/keys.csv", text))
        messages = " ".join(f.message for f in result.findings if f.rule == "secret-aws-key")
        assert "AWS access key id (AKIA****)" in messages and "AWS secret access key (****)" in messages
        assert secret not in repr(result)


def test_a_checksum_decides_between_a_token_and_a_look_alike():
    token = github_pat(7)
    broken = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert errors(review_secrets(added("app/a.py", f"x = '{token}'"))) == ["secret-github-token"]
    assert review_secrets(added("app/a.py", f"x = '{broken}'")).findings == ()
    # nor does the generic rule take it up: the vendor's format owns that shape
    assert review_secrets(added("app/a.py", f"GITHUB_TOKEN = '{broken}'")).findings == ()


def test_stripe_test_keys_are_real_keys():
    key = "sk_test_" + chars(random.Random(8), ALNUM, 99)
    assert errors(review_secrets(added("billing/client.py", f'stripe.api_key = "{key}"'))) == ["secret-stripe-key"]


def test_a_sample_jwt_and_an_unsigned_one_are_not_tokens():
    rng = random.Random(9)
    assert errors(review_secrets(added("app/a.py", f"auth = '{jwt(rng)}'"))) == ["secret-jwt"]
    assert review_secrets(added("app/a.py", f"auth = '{jwt(rng, alg='none')}'")).findings == ()


# --- private keys -----------------------------------------------------------------------

HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"
FOOTER = "-----END RSA PRIVATE KEY-----"


def key_lines(seed: int = 10) -> list[str]:
    return pem_body(random.Random(seed), 600)


def key_shapes(body: list[str]) -> dict[str, str]:
    """A private key written in the shapes code and configuration hold it."""
    python = "".join(f"    '{line}\\n'\n" for line in body)
    javascript = "".join(f'  "{line}\\n" +\n' for line in body)
    yaml = "".join(f"    {line}\n" for line in body)
    return {
        "pem": "\n".join([HEADER, *body, FOOTER]),
        "python-strings": f"KEY = (\n    '{HEADER}\\n'\n{python}    '{FOOTER}'\n)",
        "js-concatenation": f'const key = "{HEADER}\\n" +\n{javascript}  "{FOOTER}";',
        "yaml-block": f"tls:\n  key: |\n    {HEADER}\n{yaml}    {FOOTER}",
        "json-escaped-newlines": '{"key": "' + "\\n".join([HEADER, *body, FOOTER, '"}']),
        "pgp-armor": "\n".join(
            ["-----BEGIN PGP PRIVATE KEY BLOCK-----", "Version: GnuPG v2", "", *body, "=Zx8a"]
            + ["-----END PGP PRIVATE KEY BLOCK-----"]
        ),
    }


@pytest.mark.parametrize("shape", sorted(key_shapes([])))
def test_a_private_key_is_a_header_followed_by_a_key_body(shape):
    text = key_shapes(key_lines())[shape]
    result = review_secrets(added("deploy/signing.txt", text))
    [found] = [f for f in result.findings if f.rule == "secret-private-key"]
    header_line = next(number for number, line in enumerate(text.split("\n"), 1) if "BEGIN" in line)
    assert (found.line, found.severity) == (header_line, "error")
    assert all(line not in repr(result) for line in key_lines())
    # the same shape around what a README or a template puts there is not a key
    for stand_in in (["some/private/key"], ["..."], ["<your private key here>"], ["{{ .Values.privateKey }}"]):
        assert review_secrets(added("deploy/signing.txt", key_shapes(stand_in)[shape])).findings == (), stand_in


def test_a_key_header_alone_or_a_key_body_of_one_repeated_character_is_not_a_key():
    for text in (f"key = '{HEADER}'", f"{HEADER}\nMIIEowIBAAKCAQEA7{'q' * 80}\n{FOOTER}"):
        assert review_secrets(added("deploy/signing.txt", text)).findings == ()


def test_a_service_account_key_file_is_reported_as_such():
    text = service_account(random.Random(11))
    result = review_secrets(added("deploy/gcp.json", text))
    assert errors(result) == ["secret-gcp-service-account"]
    [found] = result.findings
    assert "IAM & Admin" in found.hint and found.line == 5


# --- command lines and URLs -------------------------------------------------------------


def test_credentials_in_curl_command_lines_but_not_what_curl_is_given_from_elsewhere():
    rng = random.Random(12)
    secret, bearer = password(rng), chars(rng, ALNUM, 40)
    script = (
        f"curl -sS -u deploy:{secret} https://registry.acme.io/v2/\n"
        "curl -X POST https://api.acme.io/v1/jobs \\\n"
        '  -H "Content-Type: application/json" \\\n'
        f'  -H "Authorization: Bearer {bearer}" \\\n'
        "  -d @job.json\n"
    )
    result = review_secrets(added("scripts/release.sh", script))
    assert [(f.rule, f.line) for f in result.findings] == [
        ("secret-curl-credentials", 1),
        ("secret-curl-credentials", 4),
    ]
    assert "-u ****" in result.findings[0].message and "Authorization: Bearer ****" in result.findings[1].message
    assert secret not in repr(result) and bearer not in repr(result)
    for line in (
        'curl -u "$USER:$PASSWORD" https://api.acme.io',
        "curl -u user:pass https://api.acme.io",
        "curl -u admin:admin https://api.acme.io",
        'curl -H "Authorization: Bearer $TOKEN" https://api.acme.io',
        'curl -H "Authorization: Bearer <token>" https://api.acme.io',
        'curl -H "Authorization: Bearer ${{ secrets.API_TOKEN }}" https://api.acme.io',
        'curl -H "Content-Type: application/json" https://api.acme.io',
        f"echo -u someone:{secret}  # not the command that sends it",
    ):
        assert review_secrets(added("scripts/call.sh", line)).findings == (), line


def test_a_url_with_a_password_but_not_a_stand_in_or_a_local_one():
    secret = password(random.Random(13)).replace("?", "q").replace("#", "h")
    result = review_secrets(
        added("app/settings.py", f'DATABASE_URL = "postgres://app:{secret}@db.prod.acme.io:5432/app"')
    )
    assert errors(result) == ["secret-url-credentials"]
    assert "postgres://****@db.prod.acme.io" in result.findings[0].message and secret not in repr(result)
    for url in (
        "postgres://user:password@db.acme.io/app",
        "postgres://postgres:postgres@db.acme.io/app",
        f"postgresql://app:{secret}@localhost:5432/app",
        f"postgresql://app:{secret}@db:5432/app",  # a compose service
        f"https://someone:{secret}@example.com/",
        "redis://:${REDIS_PASSWORD}@cache.acme.io:6379",
        "amqp://guest:guest@mq.acme.io//",
        f"https://foo.com:123,foo:{secret[:3]}@bar.com/path",
    ):
        assert review_secrets(added("app/settings.py", f'URL = "{url}"')).findings == (), url


# --- line shapes the generic rule reads -------------------------------------------------

VALUE = "".join(["Zr8kq2Lm", "9vX4pTw7"])


@pytest.mark.parametrize(
    ("path", "text", "name"),
    [
        ("src/client.go", f'var apiToken string = "{VALUE}"', "apiToken"),
        ("src/conf.php", f'$token .= "{VALUE}";', "$token"),
        ("Makefile", f"API_TOKEN ?= {VALUE}", "API_TOKEN"),
        ("Makefile", f"API_TOKEN ::= {VALUE}", "API_TOKEN"),
        ("Makefile", f"API_TOKEN :::= {VALUE}", "API_TOKEN"),
        ("build/rules.mk", f"DEPLOY_SECRET := {VALUE}", "DEPLOY_SECRET"),
        ("src/Main.java", f'System.setProperty("X_TOKEN", "{VALUE}");', "X_TOKEN"),
        ("config/app.json", f'{{"config": "{{\\"api_key\\": \\"{VALUE}\\\\n\\"}}"}}', "api_key"),
        ("conf/app.xml", f"<settings>\n  <password>\n    {VALUE}\n  </password>\n</settings>", "password"),
        ("conf/app.xml", f"<ApiKey>{VALUE}</ApiKey>", "ApiKey"),
        ("conf/web.config", f'<add key="StorageToken" value="{VALUE}" />', "StorageToken"),
        ("Dockerfile", f"ENV DEPLOY_TOKEN {VALUE}", "DEPLOY_TOKEN"),
        ("app/settings.py", f'os.environ["API_TOKEN"] = "{VALUE}"', "API_TOKEN"),
    ],
)
def test_the_generic_rule_reads_the_line_shapes_of_many_languages(path, text, name):
    result = review_secrets(added(path, text))
    [found] = result.findings
    assert (found.rule, found.severity) == ("secret-generic", "warning")
    assert f"value assigned to `{name}` (****)" in found.message
    assert VALUE not in repr(result)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("config/app.json", '{{"slack": {{"webhook": "{}"}}}}'),
        ("config/app.yml", "notify:\n  url: {}"),
        ("conf/app.xml", "<endpoint>\n  {}\n</endpoint>"),
        ("deploy/.env.example", "SLACK={}"),
        ("conf/app.ini", "[notify]\nurl = {}"),
        ("Makefile", "NOTIFY ?= {}"),
        ("scripts/notify.sh", "curl -X POST -d @msg.json {}"),
    ],
)
def test_vendor_values_are_found_inside_each_file_format(path, text):
    url = one("slack_webhook", 14)
    result = review_secrets(added(path, text.format(url)))
    assert "secret-slack-webhook" in [f.rule for f in result.findings]
    assert url not in repr(result)


# --- context: test fixtures and docs examples -------------------------------------------


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("tests/certs/server.key", "`tests/certs/server.key` is a test, example or docs file"),
        ("spec/fixtures/keys.rb", "is a test, example or docs file"),
        ("pkg/api/testdata/token.txt", "is a test, example or docs file"),
        ("examples/quickstart.py", "is a test, example or docs file"),
        ("docs/setup.py", "is a test, example or docs file"),
        ("README.md", "is a test, example or docs file"),
        ("config/settings.py.example", "is a test, example or docs file"),
        ("src/api/client_test.go", "is named like a test file (test)"),
        ("src/mock_server.py", "is named like a test file (mock)"),
    ],
)
def test_a_credential_in_a_fixture_is_a_notice_to_confirm(path, why):
    token = github_pat(15)
    result = review_secrets(added(path, f"token = '{token}'"))
    [found] = result.findings
    assert found.severity == "notice" and not result.failed
    assert TEST_KEY in found.message and why in found.message
    assert token not in repr(result)


def test_a_key_named_like_a_mock_or_fake_is_a_notice():
    rng = random.Random(16)
    key = private_key(rng)
    named = f"const mockPrivateKeyData = `{key}`;"
    above = 'FAKE_SIGNING_KEY = """\n' + key + '\n"""'
    for text in (named, above):
        [found] = review_secrets(added("src/signing.ts", text)).findings
        assert found.severity == "notice" and TEST_KEY in found.message
    assert "named like a mock value" in review_secrets(added("src/a.ts", named)).findings[0].message


def test_a_token_whose_body_says_dummy_is_a_notice():
    body = chars(random.Random(17), ALNUM, 15) + "Dummy"
    [found] = review_secrets(added("app/a.py", f"key = 'glpat-{body}'")).findings
    assert found.severity == "notice" and "its value says dummy" in found.message


def test_an_env_file_committed_as_a_test_fixture_is_a_notice():
    result = review_secrets(added("tests/fixtures/app/.env", "FOO=env"), added("deploy/.env", "FOO=bar"))
    assert [(f.path, f.severity) for f in result.findings] == [
        ("deploy/.env", "error"),
        ("tests/fixtures/app/.env", "notice"),
    ]


def test_the_repository_config_marks_paths_as_fixtures():
    token = github_pat(19)
    diff = added("qa/keys/deploy.txt", f"token = '{token}'")
    assert errors(review_secrets(diff)) == ["secret-github-token"]
    config = parse_config("packs: [secrets]\nfixtures: ['qa/keys/']\n")
    [found] = review_secrets(diff, config=config).findings
    assert found.severity == "notice"
    assert "`qa/keys/deploy.txt` is marked as a fixture in .github/waooaw.yml" in found.message


def test_fixtures_in_the_config_are_validated_with_their_line():
    with pytest.raises(ConfigError) as caught:
        parse_config("packs: [secrets]\nfixtures:\n  - 'qa/'\n  - ''\n")
    assert caught.value.line == 4 and "fixtures[1]" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config("fixtures: qa/\n")
    assert caught.value.line == 1


def test_fixtures_of_an_org_config_and_a_repository_add_up():
    merged = extend(parse_config("fixtures: ['qa/']\n"), parse_config("fixtures: ['e2e/data/']\n"))
    assert merged.fixtures == ["qa/", "e2e/data/"]


def test_a_pack_naming_an_unknown_detector_is_refused_with_its_line():
    text = (
        "name: mine\nrules:\n  - id: s\n    kind: secret\n    message: m\n    detectors: [github, gitlab, bitbucket]\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse_pack(text, "p.yml")
    assert caught.value.line == 6 and "unknown detector bitbucket" in str(caught.value)


# --- nothing is echoed ------------------------------------------------------------------


def test_no_rendering_repeats_a_secret_or_its_body():
    for detector in sorted(REAL):
        secret = one(detector, 20)
        result = review_secrets(added("app/settings.py", f'value = "{secret}"'))
        assert result.findings, detector
        rendered = [render_text(result), render_review_markdown(result), json.dumps(to_json(result)), repr(result)]
        body = secret[len(secret) // 3 :]  # the random part, past any public prefix
        for output in rendered:
            assert secret not in output and body not in output, detector


def test_a_finding_is_identified_by_the_line_without_its_secret():
    first, second = (
        review_secrets(added("app/a.py", f"SLACK = '{one('slack', seed)}'")).findings[0] for seed in (21, 22)
    )
    assert first.fingerprint == second.fingerprint


# --- a labelled corpus ------------------------------------------------------------------


def corpus_positives(per_vendor: int = 20) -> list[tuple[str, str, str]]:
    """(detector, path, text): real-format credentials of every error-level vendor, in
    every line shape, assigned to neutral names (or none)."""
    rng = random.Random(23)
    cases = []
    for detector in VENDORS:
        for i in range(per_vendor):
            path, shape = SHAPES[i % len(SHAPES)]
            cases.append((detector, path, shape.format(REAL[detector](rng))))
    for detector, make in NAMED.items():
        for i in range(per_vendor // 2):
            name, value = make(rng)
            path, shape = [
                ("app/settings.py", '{} = "{}"'),
                ("config/app.yml", "{}: {}"),
                ("deploy/.env.prod", "{}={}"),
            ][i % 3]
            cases.append((detector, path, shape.format(name, value)))
    for i in range(per_vendor // 2):
        cases.append(("private_key", f"deploy/key{i}.pem", private_key(rng)))
        cases.append(("gcp_service_account", f"deploy/sa{i}.json", service_account(rng)))
        cases.append(("curl", f"scripts/c{i}.sh", f"curl -u ci:{password(rng)} https://ci.acme.io/api"))
        cases.append(("url_credentials", f"app/db{i}.py", f"URL = 'mysql://app:{password(rng)}@db{i}.acme.io/app'"))
    return cases


def corpus_look_alikes(per_vendor: int = 20) -> list[tuple[str, str, str]]:
    """(kind, path, text): strings shaped like credentials that are not, in the same shapes."""
    rng = random.Random(24)
    cases = []
    for detector, make in LOOK_ALIKES.items():
        for i in range(per_vendor):
            variants = make(rng)
            path, shape = SHAPES[i % len(SHAPES)]
            cases.append((detector, path, shape.format(variants[i % len(variants)])))
    everyday = {
        "sha1": lambda: f"commit = '{chars(rng, HEX, 40)}'",
        "sha256": lambda: f'digest: "sha256:{chars(rng, HEX, 64)}"',
        "uuid": lambda: f"request_id = '{uuid.UUID(int=rng.getrandbits(128), version=4)}'",
        "integrity": lambda: f'"integrity": "sha512-{chars(rng, ALNUM + "+/", 86)}=="',
        "base64": lambda: f'icon = "data:image/png;base64,{chars(rng, ALNUM + "+/", 120)}"',
        "header-only key": lambda: f"{HEADER}\\nsome/private/key\\n{FOOTER}",
        "placeholder password": lambda: 'DB_PASSWORD = "changeme"',
        "env reference": lambda: 'token = os.environ["API_TOKEN"]',
        "template": lambda: "api_key: ${{ secrets.API_KEY }}",
        "public key": lambda: f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{chars(rng, ALNUM, 43)} deploy@ci",
        "certificate": lambda: "-----BEGIN CERTIFICATE-----\n" + "\n".join(pem_body(rng, 300)),
        "presigned url": lambda: f"url = 'https://b.s3.amazonaws.com/k?X-Amz-Credential={REAL['aws'](rng)}%2F20240101'",
        "session id": lambda: f"session_id = '{chars(rng, ALNUM, 40)}'",
        "password hash": lambda: f'password_hash = "{chars(rng, HEX, 64)}"',
        "token type": lambda: 'token_type = "bearer"',
        "secret name": lambda: 'secret_name = "prod/db/password"',
        "token url": lambda: 'TOKEN_URL = "https://oauth2.googleapis.com/token"',
        "api key placeholder": lambda: 'API_KEY = "YOUR_API_KEY_HERE"',
        "xml placeholder": lambda: "<password>\n  ${DB_PASSWORD}\n</password>",
        "curl from env": lambda: 'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user',
        "local url": lambda: f"DATABASE_URL = 'postgres://app:{chars(rng, ALNUM, 16)}@localhost:5432/app'",
    }
    for kind, make in everyday.items():
        for i in range(per_vendor):
            cases.append((kind, ["app/settings.py", "config/app.yml", "web/src/index.ts"][i % 3], make()))
    return cases


def test_corpus_recall_at_error_level_and_flag_rate_on_look_alikes():
    positives = corpus_positives()
    vendors = {detector for detector, _, _ in positives}
    assert len(vendors) >= 40
    missed = Counter(d for d, path, text in positives if RULE_OF[d] not in errors(review_secrets(added(path, text))))
    recall = 1 - sum(missed.values()) / len(positives)
    assert recall >= 0.95, f"recall at error level {recall:.1%}, missed: {dict(missed)}"

    look_alikes = corpus_look_alikes()
    flagged = Counter(kind for kind, path, text in look_alikes if review_secrets(added(path, text)).findings)
    rate = sum(flagged.values()) / len(look_alikes)
    assert rate <= 0.05, f"{rate:.1%} of look-alikes flagged: {dict(flagged)}"
