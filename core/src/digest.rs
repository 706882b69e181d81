//! `sha256:<64 hex>` digests (`shared/spec/ollama-api.md` §4.2). The URL and `files` forms accept
//! `sha256:` or `sha256-` and either hex case; kiln normalises to lowercase, the form blobs are
//! stored under, so the digest can never name a path outside `blobs/`.

use alloc::string::String;
use core::fmt;

use crate::Error;

/// A validated SHA-256 digest: exactly 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>` or `sha256-<hex>` (hex of either case).
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] for anything else.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let hex = s.strip_prefix("sha256:").or_else(|| s.strip_prefix("sha256-")).ok_or(Error::InvalidDigest)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidDigest);
        }
        Ok(Self(hex.to_ascii_lowercase()))
    }

    /// From 32 raw hash bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        Self(s)
    }

    /// The 64 lowercase hex digits.
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The blob file name: `sha256-<hex>`.
    #[must_use]
    pub fn file_name(&self) -> String {
        alloc::format!("sha256-{}", self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// Serialized as `sha256:<hex>`, the form manifests and requests use.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parsed on the way in, so a value holding a `Digest` (a manifest layer) cannot exist with a
/// malformed one.
impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(|_| {
            serde::de::Error::custom(alloc::format!("digest {s:?} is malformed: want sha256:<64 hex digits>"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad";

    #[test]
    fn accepts_both_separators_and_cases() {
        let a = Digest::parse(&alloc::format!("sha256:{HEX}")).unwrap();
        let b = Digest::parse(&alloc::format!("sha256-{}", HEX.to_uppercase())).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), alloc::format!("sha256:{HEX}"));
        assert_eq!(a.file_name(), alloc::format!("sha256-{HEX}"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            HEX,
            "sha512:00",
            "SHA256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad",
            "sha256:../../../../etc/passwd000000000000000000000000000000000000000000",
            "sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fa%",
            "sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fadd",
        ] {
            assert_eq!(Digest::parse(bad), Err(Error::InvalidDigest), "{bad}");
        }
    }

    #[test]
    fn serde_round_trip_refuses_malformed() {
        let d: Digest = serde_json::from_str(&alloc::format!("\"sha256:{HEX}\"")).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), alloc::format!("\"sha256:{HEX}\""));
        let err = serde_json::from_str::<Digest>("\"sha256:../../etc\"").unwrap_err();
        assert!(err.to_string().contains("is malformed"), "{err}");
    }

    #[test]
    fn from_bytes_is_lower_hex() {
        let d = Digest::from_bytes(&[0xab; 32]);
        assert_eq!(d.hex(), "ab".repeat(32));
    }
}
