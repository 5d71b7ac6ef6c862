"""Encrypted streams for backups: AES-256-GCM in 1 MiB chunks under a passphrase.

Layout: ``MAGIC | salt (16) | nonce prefix (8) | chunks``, each chunk ``length (4) |
ciphertext``. The key is scrypt(passphrase, salt). Each chunk's nonce is the prefix and its
number; its number and a "last chunk" flag are authenticated with it, so reordering, swapping
or cutting the file short (a truncated copy) fails on reading instead of restoring less.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"HSSKBAK1"
CHUNK = 1 << 20
_LEN = struct.Struct(">I")


class SealError(ValueError):
    """The file is not a backup, the passphrase is wrong, or the file was altered or cut."""


def passphrase_from_env() -> bytes:
    """HSSK_BACKUP_PASSPHRASE, else the contents of the file HSSK_BACKUP_KEY_FILE."""
    phrase = os.environ.get("HSSK_BACKUP_PASSPHRASE")
    if phrase:
        return phrase.encode()
    key_file = os.environ.get("HSSK_BACKUP_KEY_FILE")
    if key_file:
        data = Path(key_file).read_bytes().strip()
        if data:
            return data
    raise SealError(
        "Chưa có khóa sao lưu: đặt HSSK_BACKUP_PASSPHRASE hoặc HSSK_BACKUP_KEY_FILE / no backup "
        "key: set HSSK_BACKUP_PASSPHRASE or HSSK_BACKUP_KEY_FILE (a file readable only by hssk)"
    )


def _key(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase)


def _aad(salt: bytes, n: int, last: bool) -> bytes:
    return MAGIC + salt + struct.pack(">QB", n, last)


class SealedWriter(io.RawIOBase):
    """A write-only stream that encrypts what is written into ``out``."""

    def __init__(self, out: BinaryIO, passphrase: bytes) -> None:
        self._out = out
        self._salt = os.urandom(16)
        self._prefix = os.urandom(8)
        self._aes = AESGCM(_key(passphrase, self._salt))
        self._buf = bytearray()
        self._n = 0
        out.write(MAGIC + self._salt + self._prefix)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buf += data
        while len(self._buf) > CHUNK:
            self._seal(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _seal(self, plain: bytes, *, last: bool) -> None:
        nonce = self._prefix + struct.pack(">I", self._n)
        ct = self._aes.encrypt(nonce, plain, _aad(self._salt, self._n, last))
        self._out.write(_LEN.pack(len(ct)) + ct)
        self._n += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
        super().close()


class SealedReader(io.RawIOBase):
    """A read-only stream of what a ``SealedWriter`` wrote; raises ``SealError`` on tampering."""

    def __init__(self, src: BinaryIO, passphrase: bytes) -> None:
        head = src.read(len(MAGIC) + 24)
        if len(head) < len(MAGIC) + 24 or not head.startswith(MAGIC):
            raise SealError("không phải tệp sao lưu HSSK / not an HSSK backup file")
        self._src = src
        self._salt = head[len(MAGIC) : len(MAGIC) + 16]
        self._prefix = head[len(MAGIC) + 16 :]
        self._aes = AESGCM(_key(passphrase, self._salt))
        self._buf = b""
        self._n = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _next(self) -> None:
        raw = self._src.read(_LEN.size)
        if len(raw) < _LEN.size:
            raise SealError("tệp sao lưu bị cắt cụt / the backup file is truncated")
        (size,) = _LEN.unpack(raw)
        ct = self._src.read(size)
        if len(ct) < size:
            raise SealError("tệp sao lưu bị cắt cụt / the backup file is truncated")
        nonce = self._prefix + struct.pack(">I", self._n)
        for last in (False, True):
            try:
                self._buf = self._aes.decrypt(nonce, ct, _aad(self._salt, self._n, last))
            except InvalidTag:
                continue
            self._done = last
            self._n += 1
            return
        if self._n == 0:
            raise SealError(
                "sai khóa sao lưu hoặc tệp bị sửa / wrong backup passphrase, or the file was altered"
            )
        raise SealError(f"tệp sao lưu bị sửa ở khối {self._n} / the backup file was altered")

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf and not self._done:
            self._next()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
