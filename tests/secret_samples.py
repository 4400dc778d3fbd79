"""Credentials synthesised to their vendors' formats, and look-alikes, made at run time.

Nothing credential-shaped is written in the repository (GitHub's push protection
would rightly block a real one): every value is generated from a seeded random
generator, with the vendor's checksum computed here, independently of the code under
test (GitHub's and npm's CRC32 in base 62, age's bech32).

`REAL[detector](rng)` makes one real-format credential of that detector;
`LOOK_ALIKES[detector](rng)` strings shaped like it that are not one (a wrong
checksum or length, a placeholder body, a public identifier of the same vendor).
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
import zlib
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
BASE32 = string.ascii_uppercase + "234567"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """Random characters holding at least one lower-case letter, upper-case letter and digit."""
    while True:
        value = chars(rng, alphabet, n)
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value


def hexa(rng: random.Random, n: int) -> str:
    """Random hex holding letters and digits both (as any random key of that length does)."""
    while True:
        value = chars(rng, HEX, n)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def letters(rng: random.Random, n: int) -> str:
    """Random letters of both cases."""
    while True:
        value = chars(rng, string.ascii_letters, n)
        if any(c.islower() for c in value) and any(c.isupper() for c in value):
            return value


def crc32_base62(text: str) -> str:
    number, digits = zlib.crc32(text.encode()), ""
    while number:
        number, rest = divmod(number, 62)
        digits = BASE62[rest] + digits
    return digits.rjust(6, "0")


def _bech32_polymod(values: list[int]) -> int:
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                checksum ^= generators[i]
    return checksum


def bech32(prefix: str, data: str) -> str:
    expanded = [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]
    polymod = _bech32_polymod(expanded + [BECH32.index(c) for c in data] + [0] * 6) ^ 1
    return data + "".join(BECH32[(polymod >> 5 * (5 - i)) & 31] for i in range(6))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pem_body(rng: random.Random, size: int = 900) -> list[str]:
    """A private key's base64 body, in 64-character lines."""
    text = base64.b64encode(rng.randbytes(size)).decode()
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def github(rng: random.Random, prefix: str | None = None) -> str:
    entropy = chars(rng, ALNUM, 30)
    return (prefix or rng.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])) + entropy + crc32_base62(entropy)


def github_pat(seed: int) -> str:
    """A classic personal access token (`ghp_…`, valid checksum), the same for a seed."""
    return github(random.Random(seed), "ghp_")


def github_fine_grained(rng: random.Random) -> str:
    return "github_pat_" + chars(rng, ALNUM, 22) + "_" + chars(rng, ALNUM, 59)


def npm(rng: random.Random) -> str:
    entropy = chars(rng, ALNUM, 30)
    return "npm_" + entropy + crc32_base62(entropy)


def jwt(rng: random.Random, alg: str = "HS256", payload: dict[str, object] | None = None) -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = payload or {"sub": chars(rng, HEX, 24), "iat": rng.randrange(1_600_000_000, 1_800_000_000), "scope": "api"}
    return f"{header}.{b64url(json.dumps(body).encode())}.{b64url(rng.randbytes(32))}"


def discord(rng: random.Random) -> str:
    user_id = str(rng.randrange(10**17, 10**19))
    return b64url(user_id.encode()) + "." + chars(rng, URLSAFE, 6) + "." + chars(rng, URLSAFE, 38)


def sentry(rng: random.Random) -> str:
    payload = {"iat": rng.randrange(1_600_000_000, 1_800_000_000), "url": "https://sentry.io", "org": "acme"}
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return "sntrys_" + encoded + "_" + chars(rng, ALNUM + "+/", 43)


def age(rng: random.Random) -> str:
    return "AGE-SECRET-KEY-1" + bech32("age-secret-key-", chars(rng, BECH32, 52)).upper()


def azure(rng: random.Random) -> str:
    return mixed(rng, ALNUM, 3) + str(rng.randrange(10)) + "Q~" + mixed(rng, ALNUM + "_~.-", 34)


def gitlab(rng: random.Random) -> str:
    return rng.choice(
        [
            "glpat-" + chars(rng, URLSAFE, 20),
            "glpat-" + b64url(rng.randbytes(30)) + ".01." + chars(rng, string.digits + string.ascii_lowercase, 7),
            "glrt-t1_" + chars(rng, URLSAFE, 27) + ".01." + chars(rng, string.digits + string.ascii_lowercase, 7),
            "gldt-" + chars(rng, URLSAFE, 20),
            "glptt-" + chars(rng, HEX, 40),
        ]
    )


def slack(rng: random.Random) -> str:
    def numbers(n: int) -> str:
        return "-".join(str(rng.randrange(10**11, 10**12)) for _ in range(n))

    return rng.choice(
        [
            "xoxb-" + numbers(2) + "-" + chars(rng, ALNUM, 24),
            "xoxp-" + numbers(3) + "-" + chars(rng, HEX, 32),
            "xapp-1-A"
            + chars(rng, string.ascii_uppercase + string.digits, 10)
            + "-"
            + numbers(1)
            + "-"
            + chars(rng, HEX, 64),
        ]
    )


def private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return "\n".join([f"-----BEGIN {kind}PRIVATE KEY-----", *pem_body(rng), f"-----END {kind}PRIVATE KEY-----"])


def service_account(rng: random.Random) -> str:
    """A Google Cloud service-account key file, the key on one line with escaped newlines."""
    key = "\\n".join(["-----BEGIN PRIVATE KEY-----", *pem_body(rng), "-----END PRIVATE KEY-----", ""])
    project = "acme-" + chars(rng, string.digits, 6)
    return "\n".join(
        [
            "{",
            '  "type": "service_account",',
            f'  "project_id": "{project}",',
            f'  "private_key_id": "{chars(rng, HEX, 40)}",',
            f'  "private_key": "{key}",',
            f'  "client_email": "deployer@{project}.iam.gserviceaccount.com"',
            "}",
        ]
    )


def password(rng: random.Random) -> str:
    return mixed(rng, ALNUM + "!#%&*+=?", 18)


Maker = Callable[[random.Random], str]


def one(detector: str, seed: int = 0) -> str:
    """One real-format credential of `detector`, the same for a seed."""
    return REAL[detector](random.Random(seed))


# One real-format credential per detector.
REAL: dict[str, Maker] = {
    "aws": lambda r: "AKIA" + chars(r, BASE32, 16),
    "github": lambda r: r.choice([github, github_fine_grained])(r),
    "anthropic": lambda r: "sk-ant-api03-" + chars(r, URLSAFE, 93) + "AA",
    "openai": lambda r: r.choice(
        [
            "sk-proj-" + chars(r, URLSAFE, 74) + "T3BlbkFJ" + chars(r, URLSAFE, 74),
            "sk-" + chars(r, ALNUM, 20) + "T3BlbkFJ" + chars(r, ALNUM, 20),
        ]
    ),
    "npm": npm,
    "slack": slack,
    "slack_webhook": lambda r: (
        "https://hooks.slack.com/services/T"
        + chars(r, BASE32, 10)
        + "/B"
        + chars(r, BASE32, 10)
        + "/"
        + chars(r, ALNUM, 24)
    ),
    "gitlab": gitlab,
    "stripe": lambda r: (
        r.choice(["sk_live_", "sk_test_", "rk_live_", "rk_test_"]) + chars(r, ALNUM, r.choice([24, 99]))
    ),
    "gcp_api_key": lambda r: "AIza" + chars(r, URLSAFE, 35),
    "jwt": jwt,
    "azure": azure,
    "pypi": lambda r: "pypi-AgEIcHlwaS5vcmc" + chars(r, URLSAFE, 120),
    "twilio": lambda r: r.choice(["SK" + hexa(r, 32), "AC" + hexa(r, 32) + ":" + hexa(r, 32)]),
    "sendgrid": lambda r: "SG." + chars(r, URLSAFE, 22) + "." + chars(r, URLSAFE, 43),
    "huggingface": lambda r: "hf_" + letters(r, 34),
    "digitalocean": lambda r: r.choice(["dop_v1_", "doo_v1_"]) + chars(r, HEX, 64),
    "heroku": lambda r: "HRKU-AA" + chars(r, URLSAFE, 58),
    "shopify": lambda r: r.choice(["shpat_", "shpss_", "shpca_", "shppa_"]) + chars(r, HEX, 32),
    "vault": lambda r: "hvs.CAESI" + chars(r, URLSAFE, 90),
    "terraform": lambda r: (
        chars(r, string.ascii_lowercase + string.digits, 14)
        + ".atlasv1."
        + chars(r, string.ascii_lowercase + string.digits, 67)
    ),
    "databricks": lambda r: "dapi" + hexa(r, 32),
    "discord": discord,
    "discord_webhook": lambda r: (
        "https://discord.com/api/webhooks/" + str(r.randrange(10**17, 10**18)) + "/" + chars(r, URLSAFE, 68)
    ),
    "sentry": lambda r: r.choice([sentry(r), "sntryu_" + chars(r, HEX, 64)]),
    "sentry_dsn": lambda r: (
        f"https://{chars(r, HEX, 32)}@o{r.randrange(10**5, 10**6)}.ingest.sentry.io/{r.randrange(10**6, 10**7)}"
    ),
    "mailgun": lambda r: r.choice(
        ["key-" + hexa(r, 32), hexa(r, 32) + "-" + chars(r, HEX, 8) + "-" + chars(r, HEX, 8)]
    ),
    "telegram": lambda r: str(r.randrange(10**8, 10**10)) + ":AA" + chars(r, URLSAFE, 33),
    "mailchimp": lambda r: hexa(r, 32) + "-us" + str(r.randrange(1, 21)),
    "postman": lambda r: "PMAK-" + chars(r, HEX, 24) + "-" + chars(r, HEX, 34),
    "dockerhub": lambda r: "dckr_pat_" + chars(r, URLSAFE, 27),
    "grafana": lambda r: r.choice(
        ["glsa_" + chars(r, ALNUM, 32) + "_" + chars(r, HEX, 8), "glc_" + base64.b64encode(r.randbytes(60)).decode()]
    ),
    "linear": lambda r: "lin_api_" + chars(r, ALNUM, 40),
    "age": age,
    "newrelic": lambda r: "NRAK-" + chars(r, string.ascii_uppercase + string.digits, 27),
    "rubygems": lambda r: "rubygems_" + chars(r, HEX, 48),
    "supabase": lambda r: "sbp_" + chars(r, HEX, 40),
    "doppler": lambda r: "dp.pt." + chars(r, ALNUM, 43),
}

# Detectors whose credentials have no prefix of their own: a name (or a neighbour) says whose they are.
NAMED: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "aws": lambda r: ("aws_secret_access_key", mixed(r, ALNUM + "/+", 40)),
    "datadog": lambda r: (
        (r.choice(["DD_API_KEY", "DATADOG_API_KEY"]), hexa(r, 32))
        if r.random() < 0.5
        else (r.choice(["DD_APP_KEY", "datadog_application_key"]), hexa(r, 40))
    ),
    "heroku": lambda r: (
        "HEROKU_API_KEY",
        str(uuid.UUID(int=r.getrandbits(128), version=4)),
    ),
    "twilio": lambda r: ("TWILIO_AUTH_TOKEN", hexa(r, 32)),
}


def _wrong_checksum(value: str) -> str:
    last = value[-1]
    return value[:-1] + ("A" if last != "A" else "B")


# Strings shaped like each detector's credentials that are not credentials: a wrong
# checksum or length, a placeholder body, a public identifier of the same vendor.
LOOK_ALIKES: dict[str, Callable[[random.Random], list[str]]] = {
    "aws": lambda r: [
        "AKIAIOSFODNN7EXAMPLE",  # AWS's documentation key
        "AKIA" + chars(r, "0189", 16),  # not base 32
        "AIDA" + chars(r, BASE32, 16),  # an IAM user's id, not a key
        "AKIA" + "X" * 16,
    ],
    "github": lambda r: [
        _wrong_checksum(github(r)),
        "ghp_" + "x" * 36,
        "ghp_" + chars(r, ALNUM, 20) + "...",
        "ghp_YOUR_TOKEN_HERE",
    ],
    "anthropic": lambda r: [
        "sk-ant-api03-" + chars(r, URLSAFE, 40),
        "sk-ant-api03-" + chars(r, URLSAFE, 93) + "BB",
        "sk-ant-...",
    ],
    "openai": lambda r: ["sk-proj-abc123", "sk-" + "x" * 48, "sk-proj-" + "X" * 120],
    "npm": lambda r: [_wrong_checksum(npm(r)), "npm_" + "x" * 36, "npm_install_deps"],
    "slack": lambda r: [
        "xoxb-1234567890-1234567890123-" + chars(r, ALNUM, 24),
        "xoxb-your-bot-token",
        "xoxp-" + "x" * 50,
    ],
    "slack_webhook": lambda r: ["https://hooks.slack.com/services/TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX"],
    "gitlab": lambda r: ["glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-" + chars(r, ALNUM, 12), "glptt-" + "0" * 40],
    "stripe": lambda r: ["pk_live_" + chars(r, ALNUM, 24), "sk_test_" + "x" * 24, "sk_live_" + chars(r, ALNUM, 8)],
    "gcp_api_key": lambda r: ["AIza" + chars(r, URLSAFE, 20), "AIzaSy" + "X" * 33],
    "jwt": lambda r: [
        jwt(r, alg="none"),
        jwt(r, payload={"sub": "1234567890", "name": "John Doe", "iat": 1516239022}),  # the documentation's
        jwt(r, payload={"some": "payload"}),  # no claims a credential carries
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0",
    ],
    "azure": lambda r: ["abc8Q~" + "x" * 34, "ui.sidebar~.pusher" + chars(r, ALNUM, 30)],
    "pypi": lambda r: ["pypi-AgEIcHlwaS5vcmc...", "pypi-" + chars(r, ALNUM, 40)],
    "twilio": lambda r: ["SK" + "x" * 32, "SK" + chars(r, string.digits, 32), "AC" + hexa(r, 32)],
    "sendgrid": lambda r: ["SG.xxxxxxxx.yyyyyyyy", "SG." + chars(r, URLSAFE, 10) + "." + chars(r, URLSAFE, 10)],
    "huggingface": lambda r: ["hf_" + chars(r, string.ascii_lowercase, 34), "hf_hub_download", "hf_" + "x" * 34],
    "digitalocean": lambda r: ["dop_v1_" + "x" * 64, "dop_v1_" + chars(r, HEX, 40)],
    "heroku": lambda r: ["HRKU-AA" + chars(r, URLSAFE, 20), "HRKU-AA" + "x" * 58],
    "shopify": lambda r: ["shpat_" + "x" * 32, "shpat_" + chars(r, HEX, 16)],
    "vault": lambda r: ["hvs.xxxxxxxxxxxxxxxx", "hvs." + chars(r, URLSAFE, 40)],
    "terraform": lambda r: ["xxxxxxxxxxxxxx.atlasv1." + "x" * 67],
    "databricks": lambda r: ["dapi" + chars(r, HEX, 20), "dapi" + "0" * 32],
    "discord": lambda r: [b64url(b"not-a-user-id-at-all") + "." + chars(r, URLSAFE, 6) + "." + chars(r, URLSAFE, 38)],
    "discord_webhook": lambda r: ["https://discord.com/api/webhooks/123456789012345678/xxxxxxxxxxxx"],
    "sentry": lambda r: ["sntrys_" + chars(r, ALNUM, 60) + "_" + chars(r, ALNUM, 43), "sntryu_" + chars(r, HEX, 40)],
    "sentry_dsn": lambda r: ["https://public@sentry.example.com/1"],
    "mailgun": lambda r: ["key-" + "x" * 32, "key-" + chars(r, HEX, 20), "key-" + "0" * 32],
    "telegram": lambda r: [
        "12345:AA" + chars(r, URLSAFE, 33),  # too short a bot id
        str(r.randrange(10**8, 10**9)) + ":BB" + chars(r, URLSAFE, 33),
    ],
    "mailchimp": lambda r: ["x" * 32 + "-us6"],
    "postman": lambda r: ["PMAK-" + "x" * 24 + "-" + "x" * 34],
    "dockerhub": lambda r: ["dckr_pat_" + "x" * 27, "dckr_pat_" + chars(r, URLSAFE, 10)],
    "grafana": lambda r: ["glsa_" + "X" * 32 + "_AAAAAAAA", "glc_" + "x" * 40],
    "linear": lambda r: ["lin_api_" + "x" * 40, "lin_api_" + chars(r, ALNUM, 12)],
    "age": lambda r: [_wrong_checksum(age(r))],
    "newrelic": lambda r: ["NRAK-" + "X" * 27],
    "rubygems": lambda r: ["rubygems_" + chars(r, HEX, 20)],
    "supabase": lambda r: ["sbp_" + "0" * 40],
    "doppler": lambda r: ["dp.pt." + "x" * 43],
}
