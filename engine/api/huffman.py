"""HPACK's Huffman code (RFC 7541, Appendix B), decoding side.

The code is canonical: the codes of one length are consecutive integers in symbol order, and the
first code of each length follows the last code of the shorter ones. So the whole table is its
257 code lengths (bytes 0-255, then EOS), and the codes are derived from them once, on first use.
A string decodes to the same bytes whichever encoder produced it, or raises HuffmanError.
"""

from __future__ import annotations

EOS = 256

# Code length in bits of every symbol, RFC 7541 Appendix B, sixteen symbols a row.
CODE_LENGTHS = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,  # 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,  # 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,  # ' ' - '/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,  # '0' - '?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  # '@' - 'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,  # 'P' - '_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,  # '`' - 'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,  # 'p' - 127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,  # 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,  # 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,  # 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,  # 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,  # 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,  # 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,  # 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,  # 240-255
    30,  # EOS
)
LONGEST = max(CODE_LENGTHS)
MAX_PADDING_BITS = 7

_symbols: dict[int, int] = {}


class HuffmanError(ValueError):
    """A Huffman string that RFC 7541 section 5.2 says is a decoding error."""


def codes() -> dict[int, tuple[int, int]]:
    """Every symbol's (code, length), derived from the canonical code lengths."""
    derived: dict[int, tuple[int, int]] = {}
    code, previous = 0, 0
    for symbol in sorted(range(len(CODE_LENGTHS)), key=lambda s: (CODE_LENGTHS[s], s)):
        length = CODE_LENGTHS[symbol]
        code <<= length - previous
        previous = length
        derived[symbol] = (code, length)
        code += 1
    return derived


def _lookup() -> dict[int, int]:
    # Keyed by the code with a 1 bit above it, so that codes of different lengths whose bits
    # agree (0 in five bits, 0 in six) stay apart; the decoder builds its key the same way.
    if not _symbols:
        _symbols.update({(1 << length) | code: symbol
                         for symbol, (code, length) in codes().items()})
    return _symbols


def decode(data: bytes) -> bytes:
    """The bytes that ``data`` encodes.

    Raises HuffmanError for the EOS symbol inside the string, for padding longer than 7 bits,
    and for padding that is not the most significant bits of EOS (all ones)."""
    symbols = _lookup()
    decoded = bytearray()
    code = 1  # the bits read since the last symbol, under a marker bit
    for byte in data:
        for shift in (7, 6, 5, 4, 3, 2, 1, 0):
            code = (code << 1) | ((byte >> shift) & 1)
            symbol = symbols.get(code)
            if symbol is None:
                if code >> LONGEST:
                    raise HuffmanError("a Huffman code longer than any in RFC 7541")
                continue
            if symbol == EOS:
                raise HuffmanError("EOS inside a Huffman string")
            decoded.append(symbol)
            code = 1
    bits = code.bit_length() - 1
    if bits > MAX_PADDING_BITS:
        raise HuffmanError("Huffman padding longer than 7 bits")
    if code != (1 << (bits + 1)) - 1:
        raise HuffmanError("Huffman padding that is not a prefix of EOS")
    return bytes(decoded)
