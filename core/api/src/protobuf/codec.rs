//! Schema-driven translation between protobuf messages and their JSON objects.
//!
//! Decoding follows upstream's generated unmarshallers: fields may come in any order, a
//! repeated scalar may be packed or not, a later singular value replaces an earlier
//! one, a repeated message field merges into the earlier one, and unknown field
//! numbers are skipped. Encoding writes fields in field-number order, repeated scalars
//! unpacked and map entries sorted by key, as upstream's marshallers do.

use serde_json::{Map, Number, Value};

use super::ProtoError;
use super::schema::{self, Card, Field, Message, Scalar, Special, Ty};
use super::text;
use super::wire::{Reader, WireType, Writer};

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z) since the Unix epoch.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

pub(super) fn lookup(name: &str) -> Option<&'static Message> {
    schema::messages().get(name)
}

fn submessage(parent: &Message, field: &Field, name: &str) -> Result<&'static Message, ProtoError> {
    lookup(name).ok_or_else(|| ProtoError::Unsupported {
        message: parent.name.to_string(),
        field: format!("{} ({name})", field.name),
    })
}

fn invalid(msg: &Message, field: &Field, reason: impl Into<String>) -> ProtoError {
    ProtoError::InvalidValue {
        message: msg.name.to_string(),
        field: field.name.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// Decodes `bytes` as message `msg`, merging its fields into `out`.
pub(super) fn decode_message(
    msg: &'static Message,
    bytes: &[u8],
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (num, wire_type) = reader.tag()?;
        match msg.field_by_num(num) {
            Some(field) => decode_field(msg, field, wire_type, &mut reader, out)?,
            None => reader.skip(wire_type)?,
        }
    }
    Ok(())
}

fn decode_field(
    msg: &'static Message,
    field: &Field,
    wire_type: WireType,
    reader: &mut Reader<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    if field.inline {
        let Ty::Message(name) = field.ty else {
            unreachable!("schema allows only inlined messages")
        };
        let bytes = expect_len(msg, field, wire_type, reader)?;
        return decode_message(submessage(msg, field, name)?, bytes, out);
    }
    match field.card {
        Card::One => match field.ty {
            Ty::Message(name) => {
                let sub = submessage(msg, field, name)?;
                let bytes = expect_len(msg, field, wire_type, reader)?;
                let slot = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                let Value::Object(map) = slot else {
                    unreachable!("just made an object")
                };
                decode_message(sub, bytes, map)
            }
            Ty::Special(special) => {
                let bytes = expect_len(msg, field, wire_type, reader)?;
                let value = decode_special(msg, field, special, bytes)?;
                out.insert(field.name.to_string(), value);
                Ok(())
            }
            Ty::Scalar(scalar) => {
                let value = decode_scalar(msg, field, scalar, wire_type, reader)?;
                if field.omit_zero && is_zero(&value) {
                    out.remove(field.name);
                } else {
                    out.insert(field.name.to_string(), value);
                }
                Ok(())
            }
        },
        Card::Repeated => {
            let slot = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                unreachable!("just made an array")
            };
            decode_repeated(msg, field, wire_type, reader, items)
        }
        Card::Map => {
            let bytes = expect_len(msg, field, wire_type, reader)?;
            let (key, value) = decode_map_entry(msg, field, bytes)?;
            let slot = out
                .entry(field.name)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(map) = slot else {
                unreachable!("just made an object")
            };
            map.insert(key, value);
            Ok(())
        }
    }
}

fn decode_repeated(
    msg: &'static Message,
    field: &Field,
    wire_type: WireType,
    reader: &mut Reader<'_>,
    items: &mut Vec<Value>,
) -> Result<(), ProtoError> {
    match field.ty {
        Ty::Scalar(scalar)
            if wire_type == WireType::Len && scalar_wire_type(scalar) != WireType::Len =>
        {
            // Packed encoding: upstream's unmarshallers accept it for repeated numbers.
            let mut packed = Reader::new(reader.bytes()?);
            while !packed.is_empty() {
                items.push(decode_scalar(
                    msg,
                    field,
                    scalar,
                    scalar_wire_type(scalar),
                    &mut packed,
                )?);
            }
        }
        Ty::Scalar(scalar) => items.push(decode_scalar(msg, field, scalar, wire_type, reader)?),
        Ty::Special(special) => {
            let bytes = expect_len(msg, field, wire_type, reader)?;
            items.push(decode_special(msg, field, special, bytes)?);
        }
        Ty::Message(name) => {
            let sub = submessage(msg, field, name)?;
            let mut map = Map::new();
            decode_message(sub, expect_len(msg, field, wire_type, reader)?, &mut map)?;
            items.push(Value::Object(map));
        }
    }
    Ok(())
}

/// Decodes a map entry {string key = 1; T value = 2}; absent parts take their zero value.
fn decode_map_entry(
    msg: &'static Message,
    field: &Field,
    bytes: &[u8],
) -> Result<(String, Value), ProtoError> {
    let mut reader = Reader::new(bytes);
    let mut key = String::new();
    let mut value = None;
    while !reader.is_empty() {
        match reader.tag()? {
            (1, wire_type) => {
                let Value::String(k) =
                    decode_scalar(msg, field, Scalar::Str, wire_type, &mut reader)?
                else {
                    unreachable!("strings decode to strings")
                };
                key = k;
            }
            (2, wire_type) => {
                value = Some(match field.ty {
                    Ty::Scalar(scalar) => {
                        decode_scalar(msg, field, scalar, wire_type, &mut reader)?
                    }
                    Ty::Special(special) => decode_special(
                        msg,
                        field,
                        special,
                        expect_len(msg, field, wire_type, &mut reader)?,
                    )?,
                    Ty::Message(name) => {
                        let mut map = Map::new();
                        let bytes = expect_len(msg, field, wire_type, &mut reader)?;
                        decode_message(submessage(msg, field, name)?, bytes, &mut map)?;
                        Value::Object(map)
                    }
                });
            }
            (_, wire_type) => reader.skip(wire_type)?,
        }
    }
    let value = match value {
        Some(value) => value,
        None => match field.ty {
            Ty::Scalar(Scalar::Str | Scalar::Bytes) => Value::String(String::new()),
            Ty::Special(Special::Quantity) => Value::String("0".to_string()),
            _ => {
                return Err(invalid(
                    msg,
                    field,
                    format!("map entry {key:?} has no value"),
                ));
            }
        },
    };
    Ok((key, value))
}

fn expect_len<'a>(
    msg: &Message,
    field: &Field,
    wire_type: WireType,
    reader: &mut Reader<'a>,
) -> Result<&'a [u8], ProtoError> {
    if wire_type != WireType::Len {
        return Err(invalid(
            msg,
            field,
            format!("wire type {wire_type:?} where a length-delimited value belongs"),
        ));
    }
    reader.bytes()
}

fn scalar_wire_type(scalar: Scalar) -> WireType {
    match scalar {
        Scalar::Bool | Scalar::I32 | Scalar::I64 => WireType::Varint,
        Scalar::F64 => WireType::Fixed64,
        Scalar::Str | Scalar::Bytes => WireType::Len,
    }
}

fn decode_scalar(
    msg: &Message,
    field: &Field,
    scalar: Scalar,
    wire_type: WireType,
    reader: &mut Reader<'_>,
) -> Result<Value, ProtoError> {
    if wire_type != scalar_wire_type(scalar) {
        return Err(invalid(
            msg,
            field,
            format!("wire type {wire_type:?} does not fit a {scalar:?}"),
        ));
    }
    Ok(match scalar {
        Scalar::Bool => Value::Bool(reader.varint()? != 0),
        // Proto int32 is the low 32 bits of the varint (negatives are sign-extended).
        Scalar::I32 => Value::from(reader.varint()? as i64 as i32),
        Scalar::I64 => Value::from(reader.varint()? as i64),
        Scalar::F64 => {
            let value = f64::from_bits(reader.fixed64()?);
            Value::Number(
                Number::from_f64(value).ok_or_else(|| invalid(msg, field, "non-finite double"))?,
            )
        }
        Scalar::Str => {
            let bytes = reader.bytes()?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| invalid(msg, field, "string is not valid UTF-8"))?;
            Value::String(text.to_string())
        }
        Scalar::Bytes => Value::String(text::base64_encode(reader.bytes()?)),
    })
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// The fields of a small fixed message: (number, varint or bytes) in wire order.
enum Raw<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn raw_fields<'a>(bytes: &'a [u8]) -> Result<Vec<(u32, Raw<'a>)>, ProtoError> {
    let mut reader = Reader::new(bytes);
    let mut fields = Vec::new();
    while !reader.is_empty() {
        let (num, wire_type) = reader.tag()?;
        match wire_type {
            WireType::Varint => fields.push((num, Raw::Varint(reader.varint()?))),
            WireType::Len => fields.push((num, Raw::Bytes(reader.bytes()?))),
            other => reader.skip(other)?,
        }
    }
    Ok(fields)
}

fn decode_special(
    msg: &Message,
    field: &Field,
    special: Special,
    bytes: &[u8],
) -> Result<Value, ProtoError> {
    let fields = raw_fields(bytes)?;
    let varint = |num: u32| {
        fields.iter().rev().find_map(|(n, raw)| match raw {
            Raw::Varint(v) if *n == num => Some(*v),
            _ => None,
        })
    };
    let bytes_of = |num: u32| {
        fields.iter().rev().find_map(|(n, raw)| match raw {
            Raw::Bytes(b) if *n == num => Some(*b),
            _ => None,
        })
    };
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| invalid(msg, field, "string is not valid UTF-8"))
    };
    match special {
        Special::Time | Special::MicroTime => {
            // Upstream marshals the zero time as an empty message, which JSON writes as null.
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            let seconds = varint(1).unwrap_or(0) as i64;
            let nanos = varint(2).unwrap_or(0) as i64 as i32;
            if !(0..1_000_000_000).contains(&nanos) {
                return Err(invalid(msg, field, format!("nanos {nanos} out of range")));
            }
            if seconds == GO_ZERO_TIME_SECONDS && nanos == 0 {
                return Ok(Value::Null);
            }
            // Time keeps whole seconds only (upstream's Time.Unmarshal drops nanos).
            let micros = (special == Special::MicroTime).then_some(nanos as u32 / 1000);
            let text = text::format_rfc3339(seconds, micros).ok_or_else(|| {
                invalid(
                    msg,
                    field,
                    format!("time {seconds}s is outside years 0..=9999"),
                )
            })?;
            Ok(Value::String(text))
        }
        Special::Quantity => match bytes_of(1) {
            Some(b) if !b.is_empty() => Ok(Value::String(utf8(b)?)),
            _ => Ok(Value::String("0".to_string())),
        },
        Special::IntOrString => match varint(1).unwrap_or(0) {
            0 => Ok(Value::from(varint(2).unwrap_or(0) as i64 as i32)),
            1 => Ok(Value::String(utf8(bytes_of(3).unwrap_or(&[]))?)),
            other => Err(invalid(
                msg,
                field,
                format!("IntOrString type {other} is neither 0 (int) nor 1 (string)"),
            )),
        },
        Special::FieldsV1 | Special::RawExtension => match bytes_of(1) {
            None | Some([]) => Ok(Value::Null),
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|err| invalid(msg, field, format!("embedded JSON: {err}"))),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Encodes the JSON object `obj` as message `msg`. Keys in `ignore` are skipped (the
/// top level's `apiVersion` and `kind`, which travel in the envelope); any other key the
/// message does not know is an error, so no data is dropped.
pub(super) fn encode_message(
    msg: &'static Message,
    obj: &Map<String, Value>,
    ignore: &[&str],
    w: &mut Writer,
) -> Result<(), ProtoError> {
    for key in obj.keys() {
        if !ignore.contains(&key.as_str()) && !knows(msg, key)? {
            return Err(ProtoError::UnknownField {
                message: msg.name.to_string(),
                field: key.clone(),
            });
        }
    }
    encode_fields(msg, obj, w)
}

/// Whether `key` names a field of `msg` or of a message inlined into it.
fn knows(msg: &'static Message, key: &str) -> Result<bool, ProtoError> {
    for field in &msg.fields {
        if field.inline {
            let Ty::Message(name) = field.ty else {
                unreachable!("schema allows only inlined messages")
            };
            if knows(submessage(msg, field, name)?, key)? {
                return Ok(true);
            }
        } else if field.name == key {
            return Ok(true);
        }
    }
    Ok(false)
}

fn encode_fields(
    msg: &'static Message,
    obj: &Map<String, Value>,
    w: &mut Writer,
) -> Result<(), ProtoError> {
    for field in &msg.fields {
        if field.inline {
            let Ty::Message(name) = field.ty else {
                unreachable!("schema allows only inlined messages")
            };
            let mut sub = Writer::default();
            encode_fields(submessage(msg, field, name)?, obj, &mut sub)?;
            w.bytes_field(field.num, &sub.buf);
            continue;
        }
        let Some(value) = obj.get(field.name) else {
            continue;
        };
        match (field.card, value) {
            // A null Time is Go's zero time, which upstream writes as an empty message.
            (Card::One, Value::Null)
                if matches!(field.ty, Ty::Special(Special::Time | Special::MicroTime)) =>
            {
                w.bytes_field(field.num, &[]);
            }
            (_, Value::Null) => {}
            (Card::One, value) => encode_value(msg, field, field.num, value, w)?,
            (Card::Repeated, Value::Array(items)) => {
                for item in items {
                    encode_value(msg, field, field.num, item, w)?;
                }
            }
            (Card::Map, Value::Object(map)) => {
                // serde_json's map is ordered by key, as upstream sorts map keys.
                for (key, item) in map {
                    let mut entry = Writer::default();
                    entry.bytes_field(1, key.as_bytes());
                    encode_value(msg, field, 2, item, &mut entry)?;
                    w.bytes_field(field.num, &entry.buf);
                }
            }
            (Card::Repeated, _) => return Err(invalid(msg, field, "expected an array")),
            (Card::Map, _) => return Err(invalid(msg, field, "expected an object")),
        }
    }
    Ok(())
}

/// Encodes one value of `field` under field number `num`.
fn encode_value(
    msg: &'static Message,
    field: &Field,
    num: u32,
    value: &Value,
    w: &mut Writer,
) -> Result<(), ProtoError> {
    match field.ty {
        Ty::Scalar(scalar) => encode_scalar(msg, field, scalar, num, value, w),
        Ty::Special(special) => {
            let bytes = encode_special(msg, field, special, value)?;
            w.bytes_field(num, &bytes);
            Ok(())
        }
        Ty::Message(name) => {
            let Value::Object(obj) = value else {
                return Err(invalid(msg, field, "expected an object"));
            };
            let sub_msg = submessage(msg, field, name)?;
            // DeleteOptions embeds TypeMeta inline in Go; its protobuf form has no field for
            // it, so upstream's marshaller drops apiVersion and kind there too.
            let ignore: &[&str] = if sub_msg.name == "DeleteOptions" {
                &["apiVersion", "kind"]
            } else {
                &[]
            };
            let mut sub = Writer::default();
            encode_message(sub_msg, obj, ignore, &mut sub)?;
            w.bytes_field(num, &sub.buf);
            Ok(())
        }
    }
}

fn encode_scalar(
    msg: &Message,
    field: &Field,
    scalar: Scalar,
    num: u32,
    value: &Value,
    w: &mut Writer,
) -> Result<(), ProtoError> {
    match (scalar, value) {
        (Scalar::Str, Value::String(s)) => w.bytes_field(num, s.as_bytes()),
        (Scalar::Bool, Value::Bool(b)) => w.varint_field(num, u64::from(*b)),
        (Scalar::I32, Value::Number(n)) => {
            let v = n
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| invalid(msg, field, "not an int32"))?;
            w.varint_field(num, i64::from(v) as u64);
        }
        (Scalar::I64, Value::Number(n)) => {
            let v = n
                .as_i64()
                .ok_or_else(|| invalid(msg, field, "not an int64"))?;
            w.varint_field(num, v as u64);
        }
        (Scalar::F64, Value::Number(n)) => {
            let v = n
                .as_f64()
                .ok_or_else(|| invalid(msg, field, "not a double"))?;
            w.fixed64_field(num, v.to_bits());
        }
        (Scalar::Bytes, Value::String(s)) => {
            let bytes = text::base64_decode(s)
                .ok_or_else(|| invalid(msg, field, "not padded standard base64"))?;
            w.bytes_field(num, &bytes);
        }
        (scalar, _) => {
            return Err(invalid(
                msg,
                field,
                format!("expected a JSON value for a {scalar:?}"),
            ));
        }
    }
    Ok(())
}

/// The bytes of the special message for `value`.
fn encode_special(
    msg: &Message,
    field: &Field,
    special: Special,
    value: &Value,
) -> Result<Vec<u8>, ProtoError> {
    let mut w = Writer::default();
    match (special, value) {
        (Special::Time | Special::MicroTime, Value::String(s)) => {
            let (seconds, nanos) = text::parse_rfc3339(s)
                .ok_or_else(|| invalid(msg, field, "not an RFC 3339 time"))?;
            // Upstream writes both fields; Time carries whole seconds, MicroTime microseconds.
            let nanos = if special == Special::Time {
                0
            } else {
                nanos / 1000 * 1000
            };
            w.varint_field(1, seconds as u64);
            w.varint_field(2, u64::from(nanos));
        }
        (Special::Time | Special::MicroTime, Value::Null) => {}
        (Special::Quantity, Value::String(s)) => w.bytes_field(1, s.as_bytes()),
        (Special::Quantity, Value::Number(n)) => w.bytes_field(1, n.to_string().as_bytes()),
        (Special::IntOrString, Value::Number(n)) => {
            let v = n
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| invalid(msg, field, "not an int32"))?;
            w.varint_field(1, 0);
            w.varint_field(2, i64::from(v) as u64);
            w.bytes_field(3, &[]);
        }
        (Special::IntOrString, Value::String(s)) => {
            w.varint_field(1, 1);
            w.varint_field(2, 0);
            w.bytes_field(3, s.as_bytes());
        }
        (Special::FieldsV1 | Special::RawExtension, value) => {
            let raw =
                serde_json::to_vec(value).map_err(|err| invalid(msg, field, err.to_string()))?;
            w.bytes_field(1, &raw);
        }
        (special, _) => {
            return Err(invalid(
                msg,
                field,
                format!("JSON value does not fit a {special:?}"),
            ));
        }
    }
    Ok(w.buf)
}
