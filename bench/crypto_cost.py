"""What encrypting message bodies at rest costs: one Fernet token per stored body.

    python bench/crypto_cost.py [--n 20000]

Prints microseconds per encrypt and per decrypt of a typical SMS body and reply, with one key and
with three (a rotation in progress: MultiFernet encrypts with the first, tries each to decrypt).
Compare with `python bench/profile_webhooks.py --kind sms` (milliseconds per SMS webhook).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402

from hotline import crypto  # noqa: E402

BODY = "my boss took my passport and I cannot leave the factory, please help"
REPLY = "ជំនួយឥតគិតថ្លៃ។ ចុចលេខ ១ ដើម្បីនិយាយជាមួយមេធាវី។ " * 2  # a Khmer reply, ~2 segments


def per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    for keys in (1, 3):
        crypto.install([Fernet.generate_key().decode() for _ in range(keys)])
        for label, text in (("sms body", BODY), ("khmer reply", REPLY)):
            token = crypto.encrypt_text(text)
            enc = per_call(lambda text=text: crypto.encrypt_text(text), n)
            dec = per_call(lambda token=token: crypto.decrypt_text(token), n)
            print(f"{keys} key(s)  {label:12s} {len(text.encode()):4d} B -> {len(token):4d} B   "
                  f"encrypt {enc:6.1f} us   decrypt {dec:6.1f} us")
    # Decrypting a token made with the OLDEST of three keys: MultiFernet tries the newer ones first.
    keys = [Fernet.generate_key().decode() for _ in range(3)]
    crypto.install(keys[2:])
    old = crypto.encrypt_text(BODY)
    crypto.install(keys)
    print(f"3 key(s)  oldest-key token decrypt {per_call(lambda: crypto.decrypt_text(old), n):6.1f} us")


if __name__ == "__main__":
    main()
