//! String helpers whose exact behaviour Entra documents: diacritics folding, proper case,
//! culture-aware case mapping, and the deterministic generator behind `Guid`/`RandomString`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Letters the article maps to more than "strip the accent": ß→ss, æ→ae, ø→oe, ł→l, ı→i …
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'ẞ' => "SS",
        'æ' => "ae",
        'Æ' => "AE",
        'ø' => "oe",
        'Ø' => "OE",
        'œ' => "oe",
        'Œ' => "OE",
        'ł' => "l",
        'Ł' => "L",
        'ı' => "i",
        'đ' => "d",
        'Đ' => "D",
        _ => return None,
    })
}

/// Latin letters, whose accents are stripped; marks on other scripts (kana voicing marks,
/// Indic vowel signs …) carry meaning and are kept.
fn is_latin(c: char) -> bool {
    matches!(c as u32, 0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF)
}

/// `NormalizeDiacritics`: the article's table plus canonical decomposition with the combining
/// marks of Latin letters removed (`Zoë` → `Zoe`, `ǣ` → `ae`, `Ø̄` → `OE`).
pub fn normalize_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut base_is_latin = false;
    for c in s.nfd() {
        if is_combining_mark(c) {
            if !base_is_latin {
                out.push(c);
            }
            continue;
        }
        base_is_latin = is_latin(c) || fold(c).is_some();
        match fold(c) {
            Some(text) => out.push_str(text),
            None => out.push(c),
        }
    }
    out.nfc().collect()
}

/// .NET `ToTitleCase` word separators: everything that is not a letter, digit or mark.
fn default_separator(c: char) -> bool {
    !(c.is_alphanumeric() || is_combining_mark(c))
}

/// `PCase`: first character of each word upper case, the rest lower case.
pub fn proper_case(s: &str, separators: Option<&str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start_of_word = true;
    for c in s.chars() {
        let is_sep = match separators {
            Some(seps) => seps.contains(c),
            None => default_separator(c),
        };
        if is_sep {
            out.push(c);
            start_of_word = true;
        } else if start_of_word {
            push_mapped(&mut out, c, true, false);
            start_of_word = false;
        } else {
            push_mapped(&mut out, c, false, false);
        }
    }
    out
}

/// Maps one character, keeping it unchanged when the mapping is not one-to-one (as .NET's
/// invariant culture does: `ß` stays `ß` in upper case).
fn push_mapped(out: &mut String, c: char, upper: bool, turkic: bool) {
    if turkic {
        match (c, upper) {
            ('i', true) => return out.push('İ'),
            ('ı', true) => return out.push('I'),
            ('I', false) => return out.push('ı'),
            ('İ', false) => return out.push('i'),
            _ => {}
        }
    }
    let mut mapped: Vec<char> = if upper {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    match mapped.len() {
        1 => out.push(mapped.remove(0)),
        _ => out.push(c),
    }
}

/// `ToUpper`/`ToLower` with an optional RFC 4646 culture; only Turkish and Azeri differ from
/// the invariant culture for letters.
pub fn change_case(s: &str, upper: bool, culture: Option<&str>) -> String {
    let turkic = culture.is_some_and(|c| {
        let lang = c
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        lang == "tr" || lang == "az"
    });
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_mapped(&mut out, c, upper, turkic);
    }
    out
}

/// SplitMix64: small, fast, and good enough for test-reproducible GUIDs and passwords.
pub struct Rng(u64);

impl Rng {
    /// One stream per (seed, position of the call in the expression text).
    pub fn new(seed: u64, position: usize) -> Self {
        let mut rng = Rng(seed ^ (position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A version-4 GUID in its lower-case hyphenated form.
pub fn guid(rng: &mut Rng) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The special characters of the Windows password-complexity policy.
pub const SPECIALS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

/// `RandomString(length, minNumbers, minSpecial, minUpper, minLower, avoid)`.
pub fn random_string(
    rng: &mut Rng,
    length: usize,
    mins: [usize; 4],
    avoid: &str,
) -> Result<String, String> {
    const MAX: usize = 256;
    if length > MAX {
        return Err(format!(
            "RandomString length {length} is above the maximum of {MAX}"
        ));
    }
    let total: usize = mins.iter().sum();
    if total > length {
        return Err(format!(
            "RandomString minimums add up to {total}, more than the length {length}"
        ));
    }
    let keep = |c: &char| !avoid.contains(*c);
    let classes: [Vec<char>; 4] = [
        ('0'..='9').filter(keep).collect(),
        SPECIALS.chars().filter(keep).collect(),
        ('A'..='Z').filter(keep).collect(),
        ('a'..='z').filter(keep).collect(),
    ];
    let names = [
        "numbers",
        "special characters",
        "capital letters",
        "lower-case letters",
    ];
    let mut out = Vec::with_capacity(length);
    for ((class, &min), name) in classes.iter().zip(&mins).zip(names) {
        if min > 0 && class.is_empty() {
            return Err(format!(
                "RandomString: every {name} is in the characters to avoid"
            ));
        }
        for _ in 0..min {
            out.push(class[rng.below(class.len())]);
        }
    }
    let pool: Vec<char> = classes.concat();
    if out.len() < length && pool.is_empty() {
        return Err("RandomString: every character is in the characters to avoid".into());
    }
    while out.len() < length {
        out.push(pool[rng.below(pool.len())]);
    }
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i + 1));
    }
    Ok(out.into_iter().collect())
}
