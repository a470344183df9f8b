//! Protocol buffers wire format: varints, tags, length-delimited and fixed-width values.
//!
//! Only what the Kubernetes encoding uses. Reading never panics: every read checks the
//! remaining length and reports [`ProtoError::Truncated`] or [`ProtoError::Malformed`].

use super::ProtoError;

/// Wire type of a field: the low three bits of its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Result<WireType, ProtoError> {
        match bits {
            0 => Ok(WireType::Varint),
            1 => Ok(WireType::Fixed64),
            2 => Ok(WireType::Len),
            5 => Ok(WireType::Fixed32),
            // 3 and 4 are proto2 groups, which Kubernetes never emits; 6 and 7 are invalid.
            other => Err(ProtoError::Malformed {
                reason: format!("unsupported wire type {other}"),
            }),
        }
    }

    fn bits(self) -> u64 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::Fixed32 => 5,
        }
    }
}

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// A cursor over an encoded message.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for idx in 0..10 {
            let Some(&byte) = self.buf.get(idx) else {
                return Err(ProtoError::Truncated { what: "varint" });
            };
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if idx == 9 && bits > 1 {
                return Err(ProtoError::Malformed {
                    reason: "varint overflows 64 bits".to_string(),
                });
            }
            value |= bits << (7 * idx);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[idx + 1..];
                return Ok(value);
            }
        }
        Err(ProtoError::Malformed {
            reason: "varint longer than 10 bytes".to_string(),
        })
    }

    /// Reads a tag; returns the field number and wire type.
    pub(super) fn tag(&mut self) -> Result<(u32, WireType), ProtoError> {
        let tag = self.varint()?;
        let num = tag >> 3;
        if num == 0 || num > MAX_FIELD_NUMBER {
            return Err(ProtoError::Malformed {
                reason: format!("invalid field number {num}"),
            });
        }
        let wire_type = WireType::from_bits(tag & 7)?;
        Ok((
            u32::try_from(num).expect("checked against MAX_FIELD_NUMBER"),
            wire_type,
        ))
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtoError::Truncated {
            what: "length-delimited field",
        })?;
        if len > self.buf.len() {
            return Err(ProtoError::Truncated {
                what: "length-delimited field",
            });
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, ProtoError> {
        let Some((head, tail)) = self.buf.split_first_chunk::<8>() else {
            return Err(ProtoError::Truncated { what: "fixed64" });
        };
        self.buf = tail;
        Ok(u64::from_le_bytes(*head))
    }

    pub(super) fn fixed32(&mut self) -> Result<u32, ProtoError> {
        let Some((head, tail)) = self.buf.split_first_chunk::<4>() else {
            return Err(ProtoError::Truncated { what: "fixed32" });
        };
        self.buf = tail;
        Ok(u32::from_le_bytes(*head))
    }

    /// Skips a value of an unknown field, as upstream's generated `skipGenerated` does.
    pub(super) fn skip(&mut self, wire_type: WireType) -> Result<(), ProtoError> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed64().map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => self.fixed32().map(drop),
        }
    }
}

/// Appends encoded values to a buffer.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) buf: Vec<u8>,
}

impl Writer {
    pub(super) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    pub(super) fn tag(&mut self, num: u32, wire_type: WireType) {
        debug_assert!(num >= 1 && u64::from(num) <= MAX_FIELD_NUMBER);
        self.varint((u64::from(num) << 3) | wire_type.bits());
    }

    pub(super) fn bytes_field(&mut self, num: u32, bytes: &[u8]) {
        self.tag(num, WireType::Len);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    pub(super) fn varint_field(&mut self, num: u32, value: u64) {
        self.tag(num, WireType::Varint);
        self.varint(value);
    }

    pub(super) fn fixed64_field(&mut self, num: u32, value: u64) {
        self.tag(num, WireType::Fixed64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut w = Writer::default();
            w.varint(value);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint().unwrap(), value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn varint_errors() {
        assert!(matches!(
            Reader::new(&[0x80]).varint(),
            Err(ProtoError::Truncated { .. })
        ));
        let overlong = [0xff; 11];
        assert!(matches!(
            Reader::new(&overlong).varint(),
            Err(ProtoError::Malformed { .. })
        ));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(
            Reader::new(&overflow).varint(),
            Err(ProtoError::Malformed { .. })
        ));
    }
}
