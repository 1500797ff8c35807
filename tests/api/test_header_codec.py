"""HPACK: integers, the static and the dynamic table, size updates, and Huffman strings, checked
against RFC 7541's examples and against the independent ``hpack`` package (test-only)."""

from __future__ import annotations

import random

import hpack
import pytest

from engine.api import huffman
from engine.api.header_codec import (
    STATIC_TABLE,
    HeaderBlockError,
    HeaderDecoder,
    decode_integer,
    encode_block,
    encode_integer,
)

# -- integers (RFC 7541 5.1, examples C.1) ------------------------------------------------------


@pytest.mark.parametrize(("value", "prefix", "encoded"), [
    (10, 5, "0a"),  # C.1.1
    (1337, 5, "1f9a0a"),  # C.1.2
    (42, 8, "2a"),  # C.1.3
    (31, 5, "1f00"),  # exactly the prefix's limit needs a continuation octet
    (127, 7, "7f00"),
    (2**32, 4, "0ff1ffffff0f"),
])
def test_integers_as_in_the_rfc(value: int, prefix: int, encoded: str) -> None:
    assert encode_integer(value, prefix).hex() == encoded
    assert decode_integer(bytes.fromhex(encoded), 0, prefix) == (value, len(encoded) // 2)


def test_integers_round_trip_under_flag_bits() -> None:
    rng = random.Random(7541)
    for prefix in range(1, 9):
        flags = 0xFF ^ ((1 << prefix) - 1)
        for value in [0, 1, (1 << prefix) - 2, (1 << prefix) - 1, (1 << prefix), 300,
                      *(rng.randrange(2**31) for _ in range(50))]:
            encoded = b"\xaa" + encode_integer(value, prefix, flags) + b"\xbb"
            assert encoded[1] & flags == flags
            assert decode_integer(encoded, 1, prefix) == (value, len(encoded) - 1)


@pytest.mark.parametrize("encoded", ["", "1f", "1f80", "1fffffffffff7f"])
def test_truncated_or_huge_integers_are_refused(encoded: str) -> None:
    with pytest.raises(HeaderBlockError):
        decode_integer(bytes.fromhex(encoded), 0, 5)


# -- tables -----------------------------------------------------------------------------------


def test_the_static_table_is_rfc_7541_appendix_a() -> None:
    assert STATIC_TABLE == hpack.table.HeaderTable.STATIC_TABLE
    assert len(STATIC_TABLE) == 61


def test_rfc_example_requests_fill_the_dynamic_table() -> None:
    """RFC 7541 C.3 (literals) and C.4 (the same requests, Huffman-coded)."""
    blocks = [
        ("828684410f7777772e6578616d706c652e636f6d",
         "828684418cf1e3c2e5f23a6ba0ab90f4ff"),
        ("828684be58086e6f2d6361636865",
         "828684be5886a8eb10649cbf"),
        ("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
         "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"),
    ]
    expected = [
        [(":method", "GET"), (":scheme", "http"), (":path", "/"),
         (":authority", "www.example.com")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/"),
         (":authority", "www.example.com"), ("cache-control", "no-cache")],
        [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
         (":authority", "www.example.com"), ("custom-key", "custom-value")],
    ]
    sizes = [57, 110, 164]
    literal, coded = HeaderDecoder(), HeaderDecoder()
    for (plain, compressed), headers, size in zip(blocks, expected, sizes, strict=True):
        want = [(name.encode(), value.encode()) for name, value in headers]
        assert literal.decode(bytes.fromhex(plain)) == want
        assert coded.decode(bytes.fromhex(compressed)) == want
        assert literal.size == coded.size == size
    assert literal.entries == [(b"custom-key", b"custom-value"),
                               (b"cache-control", b"no-cache"),
                               (b":authority", b"www.example.com")]
    assert literal.decode(bytes.fromhex("bebfc0")) == literal.entries  # indexes 62, 63, 64


def test_entries_are_evicted_oldest_first_within_the_table_size() -> None:
    decoder = HeaderDecoder()
    decoder.decode(bytes.fromhex("3f1f"))  # size update to 62 (31 + 31)
    assert decoder.table_size == 62
    first = b"\x40" + bytes((1,)) + b"a" + bytes((1,)) + b"1"  # (a, 1): 34 octets
    second = b"\x40" + bytes((1,)) + b"b" + bytes((1,)) + b"2"
    assert decoder.decode(first) == [(b"a", b"1")]
    assert decoder.decode(second) == [(b"b", b"2")]
    assert decoder.entries == [(b"b", b"2")] and decoder.size == 34
    too_big = b"\x40" + bytes((1,)) + b"c" + bytes((40,)) + b"x" * 40
    assert decoder.decode(too_big) == [(b"c", b"x" * 40)]
    assert decoder.entries == [] and decoder.size == 0  # larger than the table: emptied
    with pytest.raises(HeaderBlockError):
        decoder.decode(b"\xbe")  # index 62: nothing there now


def test_size_updates_are_bounded_and_only_at_the_start() -> None:
    decoder = HeaderDecoder(max_table_size=4096)
    decoder.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d"))
    assert decoder.size == 57
    assert decoder.decode(bytes.fromhex("2082")) == [(b":method", b"GET")]  # update to 0
    assert decoder.entries == [] and decoder.table_size == 0
    decoder.decode(bytes.fromhex("3fe11f"))  # back up to 4096
    assert decoder.table_size == 4096
    with pytest.raises(HeaderBlockError, match="above"):
        decoder.decode(bytes.fromhex("3fe21f"))  # 4097
    with pytest.raises(HeaderBlockError, match="after a header field"):
        decoder.decode(bytes.fromhex("8220"))


@pytest.mark.parametrize("block", ["80", "c0", "0f2f", "0005616263", "00ff"])
def test_malformed_blocks_are_refused(block: str) -> None:
    with pytest.raises(HeaderBlockError):
        HeaderDecoder().decode(bytes.fromhex(block))


def test_blocks_of_the_hpack_package_decode_the_same() -> None:
    """hpack's encoder indexes, Huffman-codes, evicts and resizes; every block decodes to what
    it encoded, the two tables staying in step."""
    rng = random.Random(41)
    encoder, decoder = hpack.Encoder(), HeaderDecoder()
    alphabet = bytes(range(256))
    for round_number in range(300):
        if round_number % 50 == 25:
            encoder.header_table_size = rng.choice([0, 100, 256, 4096])
        headers = []
        for _ in range(rng.randint(1, 6)):
            name = rng.choice([b"grpc-status", b"content-type", b"x-trace",
                               b"berth-error-class", bytes(rng.choices(b"abcdefgh-", k=8))])
            value = bytes(rng.choices(alphabet, k=rng.randint(0, 40)))
            headers.append((name, value))
        block = encoder.encode(headers, huffman=round_number % 3 != 0)
        assert decoder.decode(block) == headers
        assert decoder.table_size == encoder.header_table_size


def test_encoded_blocks_decode_with_the_hpack_package() -> None:
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/berth.v1.System/Info"),
               (b":authority", b"localhost"), (b"te", b"trailers"),
               (b"content-type", b"application/grpc"), (b"grpc-timeout", b"10000m"),
               (b"x-request-id", b"r" * 300)]
    block = encode_block(headers, table_size_update=0)
    assert block[0] == 0x20  # the size update comes first
    assert block[1:2] == b"\x83"  # :method POST is static entry 3
    decoded = hpack.Decoder().decode(block, raw=True)
    assert [(bytes(name), bytes(value)) for name, value in decoded] == headers
    decoder = HeaderDecoder()
    assert decoder.decode(block) == headers
    assert decoder.size == 0  # literals without indexing: nothing entered the table


# -- Huffman (RFC 7541 5.2, Appendix B) ---------------------------------------------------------


def _huffman_string(block: bytes) -> bytes:
    """The value of a one-field hpack block ``\\x00 name value`` whose value is Huffman-coded."""
    assert block[0] == 0x00
    name_length = block[1] & 0x7F
    position = 2 + name_length
    assert block[position] & 0x80, "hpack did not Huffman-code the value"
    length, start = decode_integer(block, position, 7)
    return block[start:start + length]


def test_every_byte_value_decodes_as_hpack_encodes_it() -> None:
    for value in [bytes(range(256)), bytes(range(255, -1, -1)),
                  *(bytes((octet,)) * 3 for octet in range(256))]:
        block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(b"x", value)],
                                       huffman=True)
        block = bytes((block[0] & 0x0F,)) + block[1:]  # never indexed -> plain literal form
        assert huffman.decode(_huffman_string(block)) == value


def test_random_strings_decode_as_hpack_encodes_them() -> None:
    rng = random.Random(2015)
    for _ in range(500):
        value = bytes(rng.choices(range(256), k=rng.randint(0, 64)))
        if rng.random() < 0.5:
            value = bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz0123456789-_./: ", k=80))
        block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(b"x", value)],
                                       huffman=True)
        block = bytes((block[0] & 0x0F,)) + block[1:]
        assert huffman.decode(_huffman_string(block)) == value


def test_the_code_is_complete_and_canonical() -> None:
    codes = huffman.codes()
    assert sum(2.0 ** -length for _, length in codes.values()) == 1.0  # Kraft: no gap
    assert codes[ord("0")] == (0x0, 5) and codes[ord(" ")] == (0x14, 6)
    assert codes[ord("a")] == (0x3, 5) and codes[0] == (0x1FF8, 13)
    assert codes[huffman.EOS] == (0x3FFFFFFF, 30)


@pytest.mark.parametrize(("encoded", "reason"), [
    ("18", "not a prefix of EOS"),  # 'a' (00011) padded with zeros
    ("ff", "longer than 7 bits"),  # eight bits of padding
    ("fffffffc", "EOS inside"),  # the 30 bits of EOS, then 2 of padding
])
def test_bad_huffman_strings_are_refused(encoded: str, reason: str) -> None:
    with pytest.raises(huffman.HuffmanError, match=reason):
        huffman.decode(bytes.fromhex(encoded))
    assert huffman.decode(bytes.fromhex("1f")) == b"a"  # the same 'a', padded with ones
