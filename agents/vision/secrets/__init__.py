"""Secret detection: the detectors behind WowVision's `secret` rules.

- `tokens`: vendor formats (prefixes, lengths, alphabets, checksums), 39 detectors;
- `keys`: private keys as multi-line blocks, and Google Cloud service-account keys;
- `commands`: credentials in curl command lines and in URLs;
- `generic`: generated-looking values assigned to secret-looking names, in the line
  shapes of many languages and file formats;
- `placeholders`: what stands in for a secret, and what marks a test value;
- `context`: test fixtures and docs examples, where a real-format key is reported at
  notice (`TEST_KEY`);
- `scan`: one detector over one file's added lines.

Nothing here returns a secret for display: a hit carries the secret only so that it
can be blanked out of the line before the line identifies a finding.
"""
