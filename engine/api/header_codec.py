"""HPACK (RFC 7541): HTTP/2 header blocks, encoded and decoded.

Encoding keeps no state: a field found whole in the static table is sent as its index, any other
as a literal without indexing (section 6.2.2), never Huffman-coded. So the peer's dynamic table
stays empty; a block may start with a size update to 0, which a connection's first block sends
so that whatever table size the peer announces, the encoder is within it.

Decoding is complete: indexed fields from the static and the dynamic table, literals with and
without indexing and never indexed, dynamic table size updates (only at the start of a block and
never above the size this side announced), integers of any prefix, and Huffman strings. A
malformed block raises HeaderBlockError; the connection must then end (COMPRESSION_ERROR), since
the two tables can no longer agree.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[bytes, bytes]

STATIC_TABLE: tuple[Header, ...] = tuple(
    (name.encode(), value.encode()) for name, value in (
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
        (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"),
        (":status", "200"), (":status", "204"), (":status", "206"), (":status", "304"),
        (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
        ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
        ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
        ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
        ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
        ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
        ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
        ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
        ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ))
_STATIC_FIELDS = {field: index for index, field in enumerate(STATIC_TABLE, 1)}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in enumerate(STATIC_TABLE, 1):
    _STATIC_NAMES.setdefault(_name, _index)

ENTRY_OVERHEAD = 32  # RFC 7541 4.1: an entry's size is its name, its value and 32 octets
DEFAULT_TABLE_SIZE = 4096
MAX_INTEGER = 1 << 32  # far above any size or index a sane peer sends


class HeaderBlockError(ValueError):
    """A header block that cannot be decoded (RFC 7541's decoding errors)."""


def encode_integer(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """``value`` in an integer representation with a ``prefix_bits`` prefix (RFC 7541 5.1),
    ``flags`` in the first octet's other bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    encoded = bytearray((flags | limit,))
    value -= limit
    while value >= 0x80:
        encoded.append((value & 0x7F) | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


def decode_integer(block: bytes, position: int, prefix_bits: int) -> tuple[int, int]:
    """The integer at ``block[position]`` and the position after it.

    Raises HeaderBlockError (truncated, or larger than MAX_INTEGER)."""
    if position >= len(block):
        raise HeaderBlockError("truncated integer")
    limit = (1 << prefix_bits) - 1
    value = block[position] & limit
    position += 1
    if value < limit:
        return value, position
    shift = 0
    while True:
        if position >= len(block):
            raise HeaderBlockError("truncated integer")
        octet = block[position]
        position += 1
        value += (octet & 0x7F) << shift
        if value > MAX_INTEGER:
            raise HeaderBlockError("integer too large")
        if not octet & 0x80:
            return value, position
        shift += 7


def _encode_string(data: bytes) -> bytes:
    return encode_integer(len(data), 7) + data  # H = 0: raw octets


def encode_block(headers: Iterable[Header], *, table_size_update: int | None = None) -> bytes:
    """A header block for ``headers``, in order, optionally opening with a size update."""
    block = bytearray()
    if table_size_update is not None:
        block += encode_integer(table_size_update, 5, 0x20)
    for name, value in headers:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            block += encode_integer(index, 7, 0x80)
            continue
        name_index = _STATIC_NAMES.get(name)
        if name_index is not None:
            block += encode_integer(name_index, 4)
        else:
            block += b"\x00" + _encode_string(name)
        block += _encode_string(value)
    return bytes(block)


class HeaderDecoder:
    """Decodes a connection's header blocks in order, keeping its dynamic table.

    ``max_table_size`` is the SETTINGS_HEADER_TABLE_SIZE this side announced: the most a size
    update may ask for."""

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.max_table_size = max_table_size
        self.table_size = max_table_size  # the size the peer's encoder last chose
        self.entries: list[Header] = []  # newest first: index 62 is entries[0]
        self.size = 0

    def decode(self, block: bytes) -> list[Header]:
        """The fields of ``block``. Raises HeaderBlockError."""
        headers: list[Header] = []
        position = 0
        while position < len(block):
            octet = block[position]
            if octet & 0x80:  # indexed field
                index, position = decode_integer(block, position, 7)
                headers.append(self._field(index))
            elif octet & 0x40:  # literal with incremental indexing
                position = self._literal(block, position, 6, headers)
                self._add(headers[-1])
            elif octet & 0x20:  # dynamic table size update
                if headers:
                    raise HeaderBlockError("a table size update after a header field")
                size, position = decode_integer(block, position, 5)
                if size > self.max_table_size:
                    raise HeaderBlockError(
                        f"table size update to {size} above the {self.max_table_size} allowed")
                self.table_size = size
                self._evict(size)
            else:  # literal without indexing (0000) or never indexed (0001)
                position = self._literal(block, position, 4, headers)
        return headers

    def _field(self, index: int) -> Header:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if 0 <= dynamic < len(self.entries):
            return self.entries[dynamic]
        raise HeaderBlockError(f"header index {index} is in neither table")

    def _literal(self, block: bytes, position: int, prefix_bits: int,
                 headers: list[Header]) -> int:
        index, position = decode_integer(block, position, prefix_bits)
        if index:
            name = self._field(index)[0]
        else:
            name, position = self._string(block, position)
        value, position = self._string(block, position)
        headers.append((name, value))
        return position

    @staticmethod
    def _string(block: bytes, position: int) -> tuple[bytes, int]:
        if position >= len(block):
            raise HeaderBlockError("truncated string")
        huffman = block[position] & 0x80
        length, position = decode_integer(block, position, 7)
        end = position + length
        if end > len(block):
            raise HeaderBlockError("truncated string")
        data = block[position:end]
        if huffman:
            from engine.api.huffman import HuffmanError, decode  # only if the peer uses it

            try:
                data = decode(data)
            except HuffmanError as error:
                raise HeaderBlockError(str(error)) from None
        return data, end

    def _add(self, field: Header) -> None:
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if size > self.table_size:  # RFC 7541 4.4: the table is emptied, nothing added
            self.entries.clear()
            self.size = 0
            return
        self._evict(self.table_size - size)
        self.entries.insert(0, field)
        self.size += size

    def _evict(self, limit: int) -> None:
        while self.size > limit:
            name, value = self.entries.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD
