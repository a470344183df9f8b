//! HPACK (RFC 7541) for the direct gRPC server and the load generator's client: a
//! complete decoder (static and dynamic tables, Huffman-coded strings, size updates)
//! for the peer's header blocks, and the literal encodings this side's own headers
//! need. Nothing sent is indexed, so the peer's decoder table is never touched and no
//! encoder state is kept.

use std::collections::VecDeque;
use std::sync::OnceLock;

/// The static table (RFC 7541 Appendix A), index 1 first.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static table's index of `content-type`.
pub const STATIC_CONTENT_TYPE: usize = 31;

/// Each symbol's Huffman code length in bits (RFC 7541 Appendix B), symbols 0-255 and
/// EOS (256). The code is canonical: codes of one length are consecutive in symbol
/// order, and each length's first code follows the last of the length before, so the
/// lengths alone give every code.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;
const MAX_CODE_BITS: usize = 30;

/// The canonical decoding tables: for each length, its first code, how many codes it
/// has, and where its symbols start in `symbols` (sorted by length, then symbol).
struct Huffman {
    first_code: [u32; MAX_CODE_BITS + 1],
    count: [u32; MAX_CODE_BITS + 1],
    offset: [u32; MAX_CODE_BITS + 1],
    symbols: [u16; 257],
}

fn huffman() -> &'static Huffman {
    static TABLE: OnceLock<Huffman> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut h = Huffman {
            first_code: [0; MAX_CODE_BITS + 1],
            count: [0; MAX_CODE_BITS + 1],
            offset: [0; MAX_CODE_BITS + 1],
            symbols: [0; 257],
        };
        for &len in &CODE_LENGTHS {
            h.count[len as usize] += 1;
        }
        let mut code = 0u32;
        let mut offset = 0u32;
        for len in 1..=MAX_CODE_BITS {
            code = (code + h.count[len - 1]) << 1;
            h.first_code[len] = code;
            h.offset[len] = offset;
            offset += h.count[len];
        }
        let mut next = h.offset;
        for (sym, &len) in CODE_LENGTHS.iter().enumerate() {
            h.symbols[next[len as usize] as usize] = sym as u16;
            next[len as usize] += 1;
        }
        h
    })
}

/// The Huffman code of `sym` and its length (used by the tests and by nothing that
/// encodes: responses are sent as plain literals).
#[cfg(test)]
fn code_of(sym: u16) -> (u32, u8) {
    let h = huffman();
    let len = CODE_LENGTHS[sym as usize];
    let first = h.offset[len as usize];
    let pos = (first..first + h.count[len as usize])
        .find(|&i| h.symbols[i as usize] == sym)
        .expect("every symbol has a code");
    (h.first_code[len as usize] + (pos - first), len)
}

/// Decodes a Huffman-coded string (RFC 7541 5.2), appending to `out`.
fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let h = huffman();
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let index = code.wrapping_sub(h.first_code[len]);
            if index < h.count[len] {
                let sym = h.symbols[(h.offset[len] + index) as usize];
                if sym == EOS {
                    return Err(HpackError::Huffman);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_CODE_BITS {
                return Err(HpackError::Huffman);
            }
        }
    }
    // Padding: at most 7 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("integer overflows")]
    Overflow,
    #[error("index {0} is not in the table")]
    BadIndex(usize),
    #[error("invalid Huffman-coded string")]
    Huffman,
    #[error("dynamic table size update to {0} exceeds the limit")]
    BadSizeUpdate(usize),
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 5.1) from `src` at `*pos`.
fn read_int(src: &[u8], pos: &mut usize, n: u8) -> Result<usize, HpackError> {
    let mask = (1u16 << n) as usize - 1;
    let first = *src.get(*pos).ok_or(HpackError::Truncated)? as usize & mask;
    *pos += 1;
    if first < mask {
        return Ok(first);
    }
    let mut value = mask;
    let mut shift = 0u32;
    loop {
        let b = *src.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        value += ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Appends an integer with an `n`-bit prefix, `flags` in the prefix byte's high bits.
pub fn write_int(out: &mut Vec<u8>, flags: u8, n: u8, mut value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a header as a literal without indexing (RFC 7541 6.2.2), its name given by
/// static index when `name_index` is non-zero, strings as plain octets.
pub fn write_literal(out: &mut Vec<u8>, name_index: usize, name: &[u8], value: &[u8]) {
    if name_index != 0 {
        write_int(out, 0x00, 4, name_index);
    } else {
        out.push(0x00);
        write_int(out, 0x00, 7, name.len());
        out.extend_from_slice(name);
    }
    write_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The decoder's state for one connection: the dynamic table.
pub struct Decoder {
    /// Newest first.
    table: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// The limit this side advertised (SETTINGS_HEADER_TABLE_SIZE); size updates may
    /// not exceed it.
    limit: usize,
    scratch_name: Vec<u8>,
    scratch_value: Vec<u8>,
}

/// The overhead RFC 7541 4.1 charges per table entry.
const ENTRY_OVERHEAD: usize = 32;

impl Decoder {
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
            scratch_name: Vec::new(),
            scratch_value: Vec::new(),
        }
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex(0)),
            1..=61 => Ok(STATIC[index - 1]),
            _ => self
                .table
                .get(index - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(HpackError::BadIndex(index)),
        }
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let (n, v) = self.table.pop_back().expect("size counts entries");
            self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // An entry larger than the table empties it (RFC 7541 4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.table.push_front((name.into(), value.into()));
        self.size += size;
    }

    /// Reads a string literal into `out` (cleared first).
    fn read_string(src: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
        out.clear();
        let huff = *src.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = read_int(src, pos, 7)?;
        let end = pos.checked_add(len).ok_or(HpackError::Overflow)?;
        let raw = src.get(*pos..end).ok_or(HpackError::Truncated)?;
        *pos = end;
        if huff {
            huffman_decode(raw, out)
        } else {
            out.extend_from_slice(raw);
            Ok(())
        }
    }

    /// Decodes one complete header block, calling `f` with each field in order. The
    /// whole block is always decoded (the table must stay in step with the peer's), so
    /// a caller that refuses a field keeps calling through to the end.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let index = read_int(block, &mut pos, 7)?;
                let (n, v) = self.entry(index)?;
                f(n, v);
            } else if b & 0xe0 == 0x20 {
                let size = read_int(block, &mut pos, 5)?;
                if size > self.limit {
                    return Err(HpackError::BadSizeUpdate(size));
                }
                self.max_size = size;
                self.evict_to(size);
            } else {
                // Literal: with incremental indexing (01), without (0000) or never
                // indexed (0001).
                let (n_bits, index_it) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name_index = read_int(block, &mut pos, n_bits)?;
                let mut name = std::mem::take(&mut self.scratch_name);
                let mut value = std::mem::take(&mut self.scratch_value);
                let read = (|| {
                    if name_index == 0 {
                        Self::read_string(block, &mut pos, &mut name)?;
                    } else {
                        name.clear();
                        name.extend_from_slice(self.entry(name_index)?.0);
                    }
                    Self::read_string(block, &mut pos, &mut value)
                })();
                if read.is_ok() {
                    f(&name, &value);
                    if index_it {
                        self.insert(&name, &value);
                    }
                }
                self.scratch_name = name;
                self.scratch_value = value;
                read?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        })
        .unwrap();
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn known_huffman_codes() {
        // RFC 7541 Appendix B.
        assert_eq!(code_of(b'0' as u16), (0x0, 5));
        assert_eq!(code_of(b'a' as u16), (0x3, 5));
        assert_eq!(code_of(b' ' as u16), (0x14, 6));
        assert_eq!(code_of(b'/' as u16), (0x18, 6));
        assert_eq!(code_of(0), (0x1ff8, 13));
        assert_eq!(code_of(255), (0x3ffffee, 26));
        assert_eq!(code_of(EOS), (0x3fffffff, 30));
    }

    #[test]
    fn every_symbol_round_trips_through_huffman() {
        let mut bits: Vec<bool> = Vec::new();
        for sym in 0..256u16 {
            let (code, len) = code_of(sym);
            bits.extend((0..len).rev().map(|i| code >> i & 1 == 1));
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(true);
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| a << 1 | b as u8))
            .collect();
        let mut out = Vec::new();
        huffman_decode(&bytes, &mut out).unwrap();
        assert_eq!(out, (0..=255u8).collect::<Vec<_>>());
    }

    #[test]
    fn bad_huffman_padding_is_refused() {
        // "a" (00011) padded with zeros instead of ones.
        assert_eq!(
            huffman_decode(&[0b0001_1000], &mut Vec::new()),
            Err(HpackError::Huffman)
        );
        // A whole byte of padding.
        assert_eq!(
            huffman_decode(&[0b0001_1111, 0xff], &mut Vec::new()),
            Err(HpackError::Huffman)
        );
        // EOS itself.
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()),
            Err(HpackError::Huffman)
        );
    }

    /// RFC 7541 C.3: requests without Huffman coding, sharing one table.
    #[test]
    fn rfc_c3_requests() {
        let mut d = Decoder::new(4096);
        let r1 = decode_all(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        );
        assert_eq!(
            r1,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.size, 57);
        let r2 = decode_all(&mut d, &hex("8286 84be 5808 6e6f 2d63 6163 6865"));
        assert_eq!(
            r2,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        let r3 = decode_all(
            &mut d,
            &hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
        );
        assert_eq!(
            r3,
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 C.4: the same requests Huffman-coded.
    #[test]
    fn rfc_c4_requests_with_huffman() {
        let mut d = Decoder::new(4096);
        let r1 = decode_all(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(r1[3], (":authority".into(), "www.example.com".into()));
        let r2 = decode_all(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(r2[4], ("cache-control".into(), "no-cache".into()));
        let r3 = decode_all(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        );
        assert_eq!(r3[4], ("custom-key".into(), "custom-value".into()));
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 C.5: responses with a 256-byte table, so entries are evicted.
    #[test]
    fn rfc_c5_eviction() {
        let mut d = Decoder::new(256);
        decode_all(
            &mut d,
            &hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230
                 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65
                 7861 6d70 6c65 2e63 6f6d",
            ),
        );
        assert_eq!(d.size, 222);
        let r2 = decode_all(&mut d, &hex("4803 3330 37c1 c0bf"));
        assert_eq!(r2[0], (":status".into(), "307".into()));
        assert_eq!(r2[3].1, "https://www.example.com");
        assert_eq!(d.size, 222);
        assert_eq!(d.table.len(), 4);
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&[0x80], |_, _| {}), Err(HpackError::BadIndex(0)));
        assert_eq!(d.decode(&[0xbe], |_, _| {}), Err(HpackError::BadIndex(62)));
        assert_eq!(
            d.decode(&[0x41, 0x05, b'a'], |_, _| {}),
            Err(HpackError::Truncated)
        );
        // 31 + 0x62 + (0x1f << 7) = 4097, one over the advertised limit.
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f], |_, _| {}),
            Err(HpackError::BadSizeUpdate(4097))
        );
        assert_eq!(
            d.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], |_, _| {}),
            Err(HpackError::Overflow)
        );
    }

    #[test]
    fn integers_round_trip() {
        for n in [4u8, 5, 6, 7] {
            for v in [0usize, 1, 14, 15, 16, 30, 31, 126, 127, 128, 1337, 1 << 20] {
                let mut out = Vec::new();
                write_int(&mut out, 0, n, v);
                let mut pos = 0;
                assert_eq!(read_int(&out, &mut pos, n).unwrap(), v);
                assert_eq!(pos, out.len());
            }
        }
    }

    #[test]
    fn literals_decode_as_written() {
        let mut block = Vec::new();
        write_literal(&mut block, STATIC_CONTENT_TYPE, b"", b"application/grpc");
        write_literal(&mut block, 0, b"grpc-status", b"0");
        let mut d = Decoder::new(4096);
        assert_eq!(
            decode_all(&mut d, &block),
            pairs(&[("content-type", "application/grpc"), ("grpc-status", "0")])
        );
        assert!(
            d.table.is_empty(),
            "literals without indexing leave the table"
        );
    }
}
