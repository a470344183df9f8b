//! Resource quantities (`100m`, `1.5Gi`, `2e3`), exact as in k8s.io/apimachinery
//! `pkg/api/resource/quantity.go`.
//!
//! A [`Quantity`] is a signed fixed-point decimal: an `i128` mantissa times a power of ten,
//! plus the [`Format`] its string form is printed in. No float is ever involved.
//!
//! Invariants, held by every constructor and operation:
//! - the mantissa has no trailing decimal zeros (they live in the scale), and zero is
//!   stored as mantissa 0, scale 0, so equal values have equal representations;
//! - the mantissa has at most [`MAX_SIGNIFICANT_DIGITS`] digits, so two quantities can
//!   always be aligned and compared in a `u128`;
//! - parsed values are never finer than 1n: upstream rounds a non-zero value away from
//!   zero to nano, so `0.9n` becomes `1n`.
//!
//! Parsing follows upstream's scanner byte for byte (the grammar is in
//! [`Quantity::parse`]); printing follows `CanonicalizeBytes`: the largest suffix (or
//! exponent that is a multiple of 3) that keeps the value exact with an integer
//! mantissa. Equality, ordering and hashing compare the numeric value only, so
//! `1Ki == 1024` and `1000m == 1`.
//!
//! Deviations from upstream, all at the edges of the domain:
//! - upstream's `String()` echoes the input verbatim when its parse heuristic thinks the
//!   input is already canonical (`+1Ki` prints as `+1Ki`, `1.500k` as `1.500k`); here
//!   [`Display`](std::fmt::Display) always prints the canonical form (`1Ki`, `1500`);
//! - upstream keeps any number of significant digits (big decimals); here a value that
//!   needs more than 38 significant digits at or above nano fails to parse with
//!   [`QuantityError::OutOfRange`], and an [`add`](Quantity::add) whose exact sum needs
//!   more is rounded away from zero to 38 digits;
//! - an exponent outside ±[`MAX_EXPONENT`] is rejected (upstream truncates it to 32 bits);
//! - a binary quantity beyond 1024Ei prints with the `Ei` suffix and a larger mantissa
//!   (upstream drops the suffix and so prints a wrong value).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Most significant decimal digits a mantissa may hold (10^38 < u128::MAX / 3).
pub const MAX_SIGNIFICANT_DIGITS: usize = 38;

/// Largest accepted magnitude of an `e`/`E` exponent (upstream: 32-bit, truncated).
pub const MAX_EXPONENT: i64 = 1_000_000_000;

/// Upstream rounds parsed values to this decimal scale (1n = 10^-9).
const NANO_SCALE: i64 = -9;

/// Upstream caps binary-SI quantities at 2^63-1 when parsing.
const MAX_BINARY_SI: i128 = i64::MAX as i128;

const _: () = assert!(MAX_SIGNIFICANT_DIGITS <= i128::MAX.ilog10() as usize);
const _: () = assert!(MAX_EXPONENT < i32::MAX as i64 / 2);

/// The three ways upstream prints a quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Powers of ten with SI suffixes: `12M` (12 * 10^6), `100m`.
    #[default]
    DecimalSI,
    /// Powers of 1024 with IEC suffixes: `12Mi` (12 * 2^20).
    BinarySI,
    /// Powers of ten as an exponent: `12e6`.
    DecimalExponent,
}

impl Format {
    /// Upstream's name for the format (`"DecimalSI"`, `"BinarySI"`, `"DecimalExponent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalSI => "DecimalSI",
            Format::BinarySI => "BinarySI",
            Format::DecimalExponent => "DecimalExponent",
        }
    }
}

/// Why a string is not a quantity. The first three carry upstream's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Upstream's `ErrFormatWrong`: empty input, stray characters, spaces, `1.5.5`.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// Upstream's `ErrNumeric`: the number part has no digit where one is needed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// Upstream's `ErrSuffix`: `1Kb`'s cousin `1K`, `1e`, `0.1mi`.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// Well formed, but beyond what Bosun represents exactly (see the module docs).
    #[error(
        "quantity {0:?} is out of range: at most 38 significant digits and exponents within +/-1000000000 are supported"
    )]
    OutOfRange(String),
}

/// A fixed-point number with a preferred print format. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantity {
    /// Signed significant digits, no trailing zeros, `|mantissa| < 10^38`.
    mantissa: i128,
    /// Power of ten the mantissa is multiplied by.
    scale: i32,
    /// How [`Display`](fmt::Display) prints the value.
    format: Format,
}

impl Quantity {
    /// Parses upstream's quantity grammar:
    ///
    /// ```text
    /// <quantity>        ::= <signedNumber><suffix>
    /// <signedNumber>    ::= <number> | <sign><number>
    /// <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    /// <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    /// <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    /// <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    /// <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
    /// ```
    ///
    /// Like upstream, a non-zero value finer than 1n rounds away from zero to 1n, a binary
    /// value is capped at 2^63-1, and a binary value strictly between -1 and 1 becomes
    /// decimal SI. Upstream's scanner quirks are kept: `"."`, `"-"` and `"+"` parse as 0.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity::zero(Format::DecimalSI));
        }
        let scanned = scan(s)?;
        let (exponent, format) = interpret_suffix(scanned.suffix).ok_or(QuantityError::Suffix)?;
        let out_of_range = || QuantityError::OutOfRange(s.to_owned());
        if exponent.abs() > MAX_EXPONENT {
            return Err(out_of_range());
        }
        if !scanned.has_digits && takes_slow_path(&scanned, exponent, format) {
            // Upstream hands the digit-less number ("." or "-.") to inf.Dec, which refuses it.
            return Err(QuantityError::Numeric);
        }
        let mut digits: Vec<u8> = scanned
            .num
            .bytes()
            .chain(scanned.denom.bytes())
            .map(|b| b - b'0')
            .skip_while(|&d| d == 0)
            .collect();
        if digits.is_empty() {
            return Ok(Quantity::zero(format));
        }
        let mut scale = -(scanned.denom.len() as i64);
        match format {
            Format::BinarySI => {
                for _ in 0..exponent {
                    double(&mut digits);
                }
            }
            Format::DecimalSI | Format::DecimalExponent => scale += exponent,
        }
        scale += strip_trailing_zeros(&mut digits);
        if scale < NANO_SCALE {
            scale = round_up_to_nano(&mut digits, scale);
        }
        let mut format = format;
        let magnitude = if format == Format::BinarySI {
            binary_magnitude(&digits, scale)
        } else {
            if digits.len() > MAX_SIGNIFICANT_DIGITS {
                return Err(out_of_range());
            }
            (to_i128(&digits), scale)
        };
        if format == Format::BinarySI && cmp_parts(magnitude, (1, 0)) == Ordering::Less {
            // Upstream: "This avoids rounding and hopefully confusion, too."
            format = Format::DecimalSI;
        }
        let (m, scale) = magnitude;
        let m = if scanned.positive { m } else { -m };
        let scale = i32::try_from(scale).map_err(|_| out_of_range())?;
        Ok(Quantity::from_parts(m, i64::from(scale), format))
    }

    /// Builds `value` in `format` (upstream's `NewQuantity`).
    pub fn from_value(value: i64, format: Format) -> Quantity {
        Quantity::from_parts(i128::from(value), 0, format)
    }

    /// Builds `value / 1000` in `format` (upstream's `NewMilliQuantity`).
    pub fn from_milli(value: i64, format: Format) -> Quantity {
        Quantity::from_parts(i128::from(value), -3, format)
    }

    /// Builds `value * 10^scale` in decimal SI (upstream's `NewScaledQuantity`).
    pub fn from_scaled(value: i64, scale: i32) -> Quantity {
        Quantity::from_parts(i128::from(value), i64::from(scale), Format::DecimalSI)
    }

    /// Zero in the given format; prints as `0` whatever the format.
    pub fn zero(format: Format) -> Quantity {
        Quantity {
            mantissa: 0,
            scale: 0,
            format,
        }
    }

    /// The format [`Display`](fmt::Display) prints in (it may still fall back, see there).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The same value, printed in another format.
    pub fn with_format(self, format: Format) -> Quantity {
        Quantity { format, ..self }
    }

    /// True if the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// True if the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The value rounded away from zero to an integer, saturating at the `i64` bounds
    /// (upstream's `Value`, which overflows instead).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value times 1000, rounded away from zero, saturating at the `i64` bounds
    /// (upstream's `MilliValue`, which overflows instead).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// `value / 10^scale` rounded away from zero, saturating (upstream's `ScaledValue`).
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let m = self.mantissa;
        if m == 0 {
            return 0;
        }
        let saturated = if m > 0 { i64::MAX } else { i64::MIN };
        let shift = i64::from(self.scale) - i64::from(scale);
        let exact = if shift >= 0 {
            pow10(shift).and_then(|p| m.checked_mul(p))
        } else {
            Some(match pow10(-shift) {
                Some(p) => {
                    let q = m / p;
                    if m % p == 0 { q } else { q + m.signum() }
                }
                // |m| < 10^38 <= 10^-shift: a non-zero sliver that rounds away to +-1.
                None => m.signum(),
            })
        };
        exact.map_or(saturated, |v| i64::try_from(v).unwrap_or(saturated))
    }

    /// `self + other`, in self's format; like upstream's `Add`, a zero self takes
    /// other's format (so `0 + 1Gi` prints `1Gi`).
    pub fn add(&self, other: &Quantity) -> Quantity {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        let (m, scale) = add_parts(self.parts(), other.parts());
        Quantity::from_parts(m, scale, format)
    }

    /// `self - other`, with [`add`](Quantity::add)'s format rule (upstream's `Sub`).
    pub fn sub(&self, other: &Quantity) -> Quantity {
        let negated = other.neg();
        self.add(&negated)
    }

    /// The value with its sign flipped, same format.
    pub fn neg(&self) -> Quantity {
        Quantity {
            mantissa: -self.mantissa,
            ..*self
        }
    }

    /// The canonical string as a k8s-openapi quantity.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.to_string())
    }

    fn parts(&self) -> (i128, i64) {
        (self.mantissa, i64::from(self.scale))
    }

    /// Normalizes `m * 10^scale`: strips trailing zeros, rounds away from zero to
    /// [`MAX_SIGNIFICANT_DIGITS`], saturates the scale to `i32`.
    fn from_parts(mut m: i128, mut scale: i64, format: Format) -> Quantity {
        if m == 0 {
            return Quantity::zero(format);
        }
        while m % 10 == 0 {
            m /= 10;
            scale += 1;
        }
        while digit_count(m.unsigned_abs()) > MAX_SIGNIFICANT_DIGITS {
            let rounded = m / 10 + if m % 10 == 0 { 0 } else { m.signum() };
            m = rounded;
            scale += 1;
            while m % 10 == 0 {
                m /= 10;
                scale += 1;
            }
        }
        let scale = scale.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Quantity {
            mantissa: m,
            scale,
            format,
        }
    }

    /// The format actually printed: binary only for whole values of at least 1024 in
    /// magnitude (upstream's `CanonicalizeBytes`), else decimal SI.
    fn effective_binary(&self) -> Option<i128> {
        if cmp_parts((self.mantissa.abs(), i64::from(self.scale)), (1024, 0)) == Ordering::Less {
            return None;
        }
        if self.scale < 0 {
            return None;
        }
        pow10(i64::from(self.scale)).and_then(|p| self.mantissa.checked_mul(p))
    }
}

/// Parses a k8s-openapi quantity. Leading and trailing whitespace is ignored, as
/// upstream's `UnmarshalJSON` trims it before parsing.
pub fn parse_k8s(
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Result<Quantity, QuantityError> {
    Quantity::parse(q.0.trim())
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let format = match self.format {
            Format::BinarySI => match self.effective_binary() {
                Some(v) => return write_binary(f, v),
                None => Format::DecimalSI,
            },
            other => other,
        };
        // Lower the exponent to a multiple of three, padding the mantissa with zeros.
        let pad = self.scale.rem_euclid(3);
        let exponent = i64::from(self.scale) - i64::from(pad);
        if self.mantissa < 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", self.mantissa.unsigned_abs())?;
        for _ in 0..pad {
            f.write_str("0")?;
        }
        let si = match exponent {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        };
        match (format, si) {
            (Format::DecimalSI, Some(suffix)) => f.write_str(suffix),
            // Past `E` (or below `n`) decimal SI has no suffix: upstream falls back to `e`.
            _ if exponent == 0 => Ok(()),
            _ => write!(f, "e{exponent}"),
        }
    }
}

fn write_binary(f: &mut fmt::Formatter<'_>, mut v: i128) -> fmt::Result {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut idx = 0;
    while idx + 1 < SUFFIXES.len() && v.unsigned_abs() >= 1024 && v % 1024 == 0 {
        v /= 1024;
        idx += 1;
    }
    write!(f, "{v}{}", SUFFIXES[idx])
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_parts(self.parts(), other.parts())
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Normalized representation: equal values have equal (mantissa, scale).
        self.mantissa.hash(state);
        self.scale.hash(state);
    }
}

/// What upstream's `parseQuantityString` splits a quantity into.
struct Scanned<'a> {
    positive: bool,
    /// Integer digits without leading zeros; "0" when there were none.
    num: &'a str,
    /// Fraction digits, possibly empty.
    denom: &'a str,
    suffix: &'a str,
    /// Whether the number part held any digit at all (`"."` does not).
    has_digits: bool,
}

/// Port of upstream's `parseQuantityString`, including its acceptance of `"."`.
fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut out = Scanned {
        positive: true,
        num: "0",
        denom: "",
        suffix: "",
        has_digits: false,
    };
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            out.positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
        out.has_digits = true;
    }
    if pos >= end {
        return Ok(out);
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    out.has_digits |= pos > start;
    if pos > start {
        out.num = &s[start..pos];
    }
    if pos >= end {
        return Ok(out);
    }
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        out.denom = &s[start..pos];
        out.has_digits |= pos > start;
        if pos >= end {
            return Ok(out);
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    out.suffix = &s[suffix_start..];
    Ok(out)
}

/// Upstream's `quantitySuffixer.interpret`: the power (of 10, or of 2 for binary SI)
/// and the format a suffix stands for; `None` for an unknown suffix.
fn interpret_suffix(suffix: &str) -> Option<(i64, Format)> {
    let decimal = |e: i64| Some((e, Format::DecimalSI));
    let binary = |e: i64| Some((e, Format::BinarySI));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if suffix.len() > 1 && (suffix.starts_with('e') || suffix.starts_with('E')) => {
            // Go's strconv.ParseInt(_, 10, 64) and Rust's i64::from_str accept the same
            // strings: an optional sign, then ASCII digits.
            let e: i64 = suffix[1..].parse().ok()?;
            Some((e, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Whether upstream would leave its int64 fast path for the big-decimal one; only
/// matters for digit-less numbers, which the big-decimal parser rejects.
fn takes_slow_path(scanned: &Scanned<'_>, exponent: i64, format: Format) -> bool {
    let digits = (scanned.num.len() + scanned.denom.len()) as i64;
    match format {
        Format::BinarySI => {
            // Upstream: precision = 15 - len(num) - int(float32(exponent)*3/10) - 1.
            !scanned.denom.is_empty() || 15 - digits - exponent * 3 / 10 - 1 < 0
        }
        Format::DecimalSI | Format::DecimalExponent => {
            18 - digits < 0 || exponent - (scanned.denom.len() as i64) < NANO_SCALE
        }
    }
}

/// Multiplies a big-endian decimal digit vector by two.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// Removes trailing zero digits, returning how many were removed.
fn strip_trailing_zeros(digits: &mut Vec<u8>) -> i64 {
    let mut n = 0;
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
        n += 1;
    }
    n
}

/// Rounds the non-zero `digits * 10^scale` (scale < -9, no trailing zeros) away from
/// zero to a multiple of 1n; returns the new scale.
fn round_up_to_nano(digits: &mut Vec<u8>, scale: i64) -> i64 {
    let drop = NANO_SCALE - scale;
    if drop >= digits.len() as i64 {
        digits.clear();
        digits.push(1);
        return NANO_SCALE;
    }
    // The dropped digits end in a non-zero digit, so the kept part goes up by one.
    digits.truncate(digits.len() - drop as usize);
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, 1);
            break;
        }
        i -= 1;
        if digits[i] == 9 {
            digits[i] = 0;
        } else {
            digits[i] += 1;
            break;
        }
    }
    NANO_SCALE + strip_trailing_zeros(digits)
}

/// The magnitude of a parsed binary-SI value, capped at 2^63-1 like upstream.
fn binary_magnitude(digits: &[u8], scale: i64) -> (i128, i64) {
    // At or above 10^19 the value is certainly past the cap; below, it fits an i128
    // (scale >= -9 leaves at most 28 digits).
    if digits.len() as i64 + scale > 19 {
        return (MAX_BINARY_SI, 0);
    }
    let m = to_i128(digits);
    if cmp_parts((m, scale), (MAX_BINARY_SI, 0)) == Ordering::Greater {
        (MAX_BINARY_SI, 0)
    } else {
        (m, scale)
    }
}

fn to_i128(digits: &[u8]) -> i128 {
    debug_assert!(digits.len() <= MAX_SIGNIFICANT_DIGITS);
    digits
        .iter()
        .fold(0i128, |acc, &d| acc * 10 + i128::from(d))
}

fn pow10(exp: i64) -> Option<i128> {
    u32::try_from(exp).ok().and_then(|e| 10i128.checked_pow(e))
}

fn digit_count(v: u128) -> usize {
    if v == 0 { 1 } else { v.ilog10() as usize + 1 }
}

/// Compares `ma * 10^sa` with `mb * 10^sb`; both mantissas below 10^38 in magnitude.
fn cmp_parts((ma, sa): (i128, i64), (mb, sb): (i128, i64)) -> Ordering {
    let by_sign = ma.signum().cmp(&mb.signum());
    if by_sign != Ordering::Equal || ma == 0 {
        return by_sign;
    }
    let magnitude = cmp_magnitude((ma.unsigned_abs(), sa), (mb.unsigned_abs(), sb));
    if ma < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

fn cmp_magnitude((a, sa): (u128, i64), (b, sb): (u128, i64)) -> Ordering {
    let ea = digit_count(a) as i64 + sa;
    let eb = digit_count(b) as i64 + sb;
    if ea != eb {
        return ea.cmp(&eb);
    }
    // Same order of magnitude: aligning the coarser one adds fewer than 39 digits and
    // yields at most as many digits as the other mantissa, so it fits a u128.
    let align = |m: u128, shift: i64| m * 10u128.pow(shift as u32);
    if sa >= sb {
        align(a, sa - sb).cmp(&b)
    } else {
        a.cmp(&align(b, sb - sa))
    }
}

/// Exact `a + b` when it fits, else rounded away from zero to 38 digits.
fn add_parts(a: (i128, i64), b: (i128, i64)) -> (i128, i64) {
    if a.0 == 0 {
        return b;
    }
    if b.0 == 0 {
        return a;
    }
    let common = a.1.min(b.1);
    let at = |(m, s): (i128, i64)| pow10(s - common).and_then(|p| m.checked_mul(p));
    if let (Some(x), Some(y)) = (at(a), at(b))
        && let Some(sum) = x.checked_add(y)
    {
        return (sum, common);
    }
    // Coarsen both operands so each keeps at most 37 digits; their sum then fits.
    let top = (digit_count(a.0.unsigned_abs()) as i64 + a.1)
        .max(digit_count(b.0.unsigned_abs()) as i64 + b.1);
    let coarse = top - (MAX_SIGNIFICANT_DIGITS as i64 - 1);
    let rescale = |(m, s): (i128, i64)| -> i128 {
        if s >= coarse {
            m * 10i128.pow((s - coarse) as u32)
        } else {
            match pow10(coarse - s) {
                Some(p) if m % p == 0 => m / p,
                Some(p) => m / p + m.signum(),
                None => m.signum(),
            }
        }
    };
    (rescale(a) + rescale(b), coarse)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and checks its canonical string (`Ok`) or that it fails (`Err`).
    fn check(input: &str, expected: Result<&str, QuantityError>) {
        let got = Quantity::parse(input).map(|q| q.to_string());
        assert_eq!(
            got.as_deref().map_err(Clone::clone),
            expected,
            "input {input:?}"
        );
    }

    #[test]
    fn parse_and_print() {
        use QuantityError::*;
        // Cases from quantity_test.go (TestQuantityParse with each decQuantity printed
        // canonically, TestQuantityParseEmit, TestQuantityString's alternates) plus the
        // brief's examples.
        let table: &[(&str, Result<&str, QuantityError>)] = &[
            ("0", Ok("0")),
            ("0n", Ok("0")),
            ("0u", Ok("0")),
            ("0m", Ok("0")),
            ("0Ki", Ok("0")),
            ("0k", Ok("0")),
            ("0Mi", Ok("0")),
            ("0Ti", Ok("0")),
            ("-0", Ok("0")),
            ("1", Ok("1")),
            ("1Ki", Ok("1Ki")),
            ("8Ki", Ok("8Ki")),
            ("7Mi", Ok("7Mi")),
            ("6Gi", Ok("6Gi")),
            ("5Ti", Ok("5Ti")),
            ("4Pi", Ok("4Pi")),
            ("3Ei", Ok("3Ei")),
            ("10Ti", Ok("10Ti")),
            ("100Ti", Ok("100Ti")),
            ("5n", Ok("5n")),
            ("4u", Ok("4u")),
            ("3m", Ok("3m")),
            ("9", Ok("9")),
            ("8k", Ok("8k")),
            ("50k", Ok("50k")),
            ("7M", Ok("7M")),
            ("6G", Ok("6G")),
            ("5T", Ok("5T")),
            ("40T", Ok("40T")),
            ("300T", Ok("300T")),
            ("2P", Ok("2P")),
            ("1E", Ok("1E")),
            ("1E-3", Ok("1e-3")),
            ("1e3", Ok("1e3")),
            ("1E6", Ok("1e6")),
            ("1e9", Ok("1e9")),
            ("1E12", Ok("1e12")),
            ("1e15", Ok("1e15")),
            ("1E18", Ok("1e18")),
            ("1e14", Ok("100e12")),
            ("1e13", Ok("10e12")),
            ("100.035k", Ok("100035")),
            ("0.001", Ok("1m")),
            ("0.0005k", Ok("500m")),
            ("0.005", Ok("5m")),
            ("0.05", Ok("50m")),
            ("0.5", Ok("500m")),
            ("0.00050k", Ok("500m")),
            ("0.00500", Ok("5m")),
            ("0.05000", Ok("50m")),
            ("0.50000", Ok("500m")),
            ("0.5e0", Ok("500e-3")),
            ("0.5e-1", Ok("50e-3")),
            ("0.5e-2", Ok("5e-3")),
            ("10.035M", Ok("10035k")),
            ("1.2e3", Ok("1200")),
            ("1.3E+6", Ok("1300e3")),
            ("1.40e9", Ok("1400e6")),
            ("1.53E12", Ok("1530e9")),
            ("1.6e15", Ok("1600e12")),
            ("1.7E18", Ok("1700e15")),
            ("9.01", Ok("9010m")),
            ("8.1k", Ok("8100")),
            ("7.123456M", Ok("7123456")),
            ("6.987654321G", Ok("6987654321")),
            ("5.444T", Ok("5444G")),
            ("40.1T", Ok("40100G")),
            ("300.2T", Ok("300200G")),
            ("2.5P", Ok("2500T")),
            ("1.01E", Ok("1010P")),
            // Things that saturate/round.
            ("3.001n", Ok("4n")),
            ("1.1E-9", Ok("2e-9")),
            ("0.0000000001", Ok("1n")),
            ("0.0000000005", Ok("1n")),
            ("0.00000000050", Ok("1n")),
            ("0.5e-9", Ok("1e-9")),
            ("0.9n", Ok("1n")),
            ("0.00000012345", Ok("124n")),
            ("0.00000012354", Ok("124n")),
            ("9Ei", Ok("9223372036854775807")),
            ("9223372036854775807Ki", Ok("9223372036854775807")),
            ("12E", Ok("12E")),
            // Fractional binary.
            ("100.035Ki", Ok("102435840m")),
            ("0.5Mi", Ok("512Ki")),
            ("0.05Gi", Ok("53687091200m")),
            ("0.025Ti", Ok("27487790694400m")),
            // Things written by trolls.
            ("0.000000000001Ki", Ok("2n")),
            (".001", Ok("1m")),
            (".0001k", Ok("100m")),
            ("1.", Ok("1")),
            ("1.G", Ok("1G")),
            (".", Ok("0")),
            ("-.", Ok("0")),
            ("+", Ok("0")),
            // TestQuantityParseEmit.
            ("1Mi", Ok("1Mi")),
            ("1Gi", Ok("1Gi")),
            ("1024Mi", Ok("1Gi")),
            ("1000M", Ok("1G")),
            (".001Ki", Ok("1024m")),
            (".000001Ki", Ok("1024u")),
            (".000000001Ki", Ok("1024n")),
            (".000000000001Ki", Ok("2n")),
            ("-1Ki", Ok("-1Ki")),
            ("-.001Ki", Ok("-1024m")),
            // TestQuantityString alternates.
            ("1024Mi", Ok("1Gi")),
            ("307200Ki", Ok("300Mi")),
            ("1025024Mi", Ok("1001Gi")),
            ("5000m", Ok("5")),
            ("0.001T", Ok("1G")),
            ("1000u", Ok("1m")),
            ("1.08", Ok("1080m")),
            ("1080000000n", Ok("1080m")),
            ("1000E", Ok("1e21")),
            ("5000E", Ok("5e21")),
            ("1000000E", Ok("1e24")),
            (".001e12", Ok("1e9")),
            ("0.001e0", Ok("1e-3")),
            ("1000e-12", Ok("1e-9")),
            ("00", Ok("0")),
            // The brief's examples.
            ("100m", Ok("100m")),
            ("0.1", Ok("100m")),
            ("1.5Gi", Ok("1536Mi")),
            ("2e3", Ok("2e3")),
            ("1000", Ok("1k")),
            ("1024", Ok("1024")),
            ("0.5Gi", Ok("512Mi")),
            ("1.5", Ok("1500m")),
            ("12e6", Ok("12e6")),
            ("1.5Ki", Ok("1536")),
            ("1.1Ki", Ok("1126400m")),
            ("18446744073709551616", Ok("18446744073709551616")),
            ("1e100", Ok("10e99")),
            ("1e-100", Ok("1e-9")),
            // Invalid, from TestQuantityParse.
            ("", Err(FormatWrong)),
            ("1.1.M", Err(FormatWrong)),
            ("1+1.0M", Err(FormatWrong)),
            ("0.1mi", Err(Suffix)),
            ("0.1am", Err(FormatWrong)),
            ("aoeu", Err(FormatWrong)),
            (".5i", Err(Suffix)),
            ("1i", Err(Suffix)),
            ("-3.01i", Err(Suffix)),
            ("-3.01e-", Err(Suffix)),
            (" 1", Err(FormatWrong)),
            ("1 ", Err(FormatWrong)),
            // Invalid, from the brief.
            ("1.5.5", Err(FormatWrong)),
            ("1Kb", Err(FormatWrong)),
            ("--1", Err(Suffix)),
            ("1K", Err(Suffix)),
            ("1e", Err(Suffix)),
            ("1ee3", Err(Suffix)),
            ("1e3.5", Err(FormatWrong)),
            (".Ei", Err(Numeric)),
            (".e-10", Err(Numeric)),
            (".Ti", Ok("0")),
            ("1e2000000000", Err(OutOfRange("1e2000000000".into()))),
            ("1e99999999999999999999", Err(Suffix)),
            (
                "123456789012345678901234567890123456789",
                Err(OutOfRange("123456789012345678901234567890123456789".into())),
            ),
        ];
        for (input, expected) in table {
            check(input, expected.clone());
        }
    }

    #[test]
    fn negatives_print_with_sign() {
        // TestQuantityString: the negation of every non-zero entry prints with a "-".
        for s in [
            "1Gi", "300Mi", "6Ki", "5", "500m", "1G", "1e21", "80e-3", "1080n", "1u",
        ] {
            let q = Quantity::parse(s).unwrap().neg();
            assert_eq!(q.to_string(), format!("-{s}"), "{s}");
        }
    }

    #[test]
    fn constructors() {
        // TestNewSet, TestMilliNewSet and TestNewScaledSet in quantity_test.go.
        let table: &[(Quantity, &str)] = &[
            (Quantity::from_value(1, Format::DecimalSI), "1"),
            (Quantity::from_value(1000, Format::DecimalSI), "1k"),
            (Quantity::from_value(1234000, Format::DecimalSI), "1234k"),
            (Quantity::from_value(1024, Format::BinarySI), "1Ki"),
            (
                Quantity::from_value(1000000, Format::DecimalExponent),
                "1e6",
            ),
            (Quantity::from_value(1024 * 1024, Format::BinarySI), "1Mi"),
            (Quantity::from_milli(1, Format::DecimalSI), "1m"),
            (Quantity::from_milli(1000, Format::DecimalSI), "1"),
            (Quantity::from_milli(1234000, Format::DecimalSI), "1234"),
            (Quantity::from_milli(1024, Format::BinarySI), "1024m"),
            (
                Quantity::from_milli(1000000, Format::DecimalExponent),
                "1e3",
            ),
            (
                Quantity::from_milli(1024 * 1024, Format::BinarySI),
                "1048576m",
            ),
            (Quantity::from_scaled(1, -9), "1n"),
            (Quantity::from_scaled(1000, -9), "1u"),
            (Quantity::from_scaled(1, -6), "1u"),
            (Quantity::from_scaled(1000, -6), "1m"),
            (Quantity::from_scaled(1, -3), "1m"),
            (Quantity::from_scaled(1000, -3), "1"),
            (Quantity::from_scaled(1, 0), "1"),
            (Quantity::from_scaled(0, 3), "0"),
            (Quantity::from_value(1025, Format::BinarySI), "1025"),
            (Quantity::from_milli(500, Format::BinarySI), "500m"),
            (Quantity::from_value(i64::MIN, Format::BinarySI), "-8Ei"),
        ];
        for (q, expected) in table {
            assert_eq!(q.to_string(), *expected, "{q:?}");
        }
    }

    #[test]
    fn values_round_away_from_zero() {
        // Value/MilliValue semantics (quantity.go: "rounded up ... away from 0").
        let table: &[(&str, i64, i64)] = &[
            ("1", 1, 1000),
            ("100m", 1, 100),
            ("1.5", 2, 1500),
            ("-1.5", -2, -1500),
            ("1n", 1, 1),
            ("-1n", -1, -1),
            ("1Ki", 1024, 1024000),
            ("1.0001m", 1, 2),
            ("9Ei", i64::MAX, i64::MAX),
            ("1e30", i64::MAX, i64::MAX),
            ("-1e30", i64::MIN, i64::MIN),
            ("1e-9", 1, 1),
            ("0", 0, 0),
        ];
        for &(s, value, milli) in table {
            let q = Quantity::parse(s).unwrap();
            assert_eq!((q.value(), q.milli_value()), (value, milli), "{s}");
        }
    }

    #[test]
    fn compare_by_value() {
        // TestQuantityCmp plus the brief's equalities.
        let table: &[(&str, &str, Ordering)] = &[
            ("0", "0", Ordering::Equal),
            ("100m", "50m", Ordering::Greater),
            ("50m", "100m", Ordering::Less),
            ("10000T", "100Gi", Ordering::Greater),
            ("1Ki", "1024", Ordering::Equal),
            ("1000m", "1", Ordering::Equal),
            ("-1", "1n", Ordering::Less),
            ("-2", "-1", Ordering::Less),
            ("1e100", "1e99", Ordering::Greater),
            ("1e-9", "0", Ordering::Greater),
            ("0Ki", "0", Ordering::Equal),
            ("1E", "1e18", Ordering::Equal),
        ];
        for &(a, b, expected) in table {
            let (qa, qb) = (Quantity::parse(a).unwrap(), Quantity::parse(b).unwrap());
            assert_eq!(qa.cmp(&qb), expected, "{a} vs {b}");
            assert_eq!(qb.cmp(&qa), expected.reverse(), "{b} vs {a}");
        }
        let hash = |q: &Quantity| {
            use std::collections::hash_map::DefaultHasher;
            let mut h = DefaultHasher::new();
            q.hash(&mut h);
            h.finish()
        };
        let (a, b) = (
            Quantity::parse("1Ki").unwrap(),
            Quantity::parse("1024000m").unwrap(),
        );
        assert_eq!(hash(&a), hash(&b));
    }

    #[test]
    fn arithmetic() {
        // TestQuantityAddZeroPreservesSuffix / TestQuantitySubZeroPreservesSuffix, and sums.
        let table: &[(&str, &str, &str, &str)] = &[
            // (a, b, a + b, a - b)
            ("100m", "0", "100m", "100m"),
            ("0", "100m", "100m", "-100m"),
            ("1Gi", "0", "1Gi", "1Gi"),
            ("0", "1Gi", "1Gi", "-1Gi"),
            ("1Gi", "512Mi", "1536Mi", "512Mi"),
            ("1", "500m", "1500m", "500m"),
            ("2e3", "1k", "3e3", "1e3"),
        ];
        for &(a, b, sum, diff) in table {
            let (qa, qb) = (Quantity::parse(a).unwrap(), Quantity::parse(b).unwrap());
            assert_eq!(qa.add(&qb).to_string(), sum, "{a} + {b}");
            assert_eq!(qa.sub(&qb).to_string(), diff, "{a} - {b}");
        }
        // Beyond 38 digits each operand is rounded away from zero to the sum's precision.
        let (big, tiny) = (
            Quantity::parse("1e30").unwrap(),
            Quantity::parse("1n").unwrap(),
        );
        assert_eq!(
            big.add(&tiny).to_string(),
            format!("1{}1e-6", "0".repeat(35))
        );
        assert_eq!(big.sub(&tiny).to_string(), format!("{}e-6", "9".repeat(36)));
    }

    #[test]
    fn k8s_round_trip() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
        // TestJSONWhitespace: surrounding whitespace is trimmed when decoding.
        let table: &[(&str, Result<&str, QuantityError>)] = &[
            (" 1", Ok("1")),
            ("1 ", Ok("1")),
            (" -1", Ok("-1")),
            ("1.5Gi", Ok("1536Mi")),
            ("x", Err(QuantityError::FormatWrong)),
        ];
        for (input, expected) in table {
            let got = parse_k8s(&K8sQuantity((*input).to_owned())).map(|q| q.to_k8s().0);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                expected.clone(),
                "{input:?}"
            );
        }
    }
}
