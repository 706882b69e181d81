//! The bounded SentencePiece `tokenizer.model` (protobuf `ModelProto`) reader.
//!
//! Only `ModelProto.pieces` (field 1) is read, and of each `SentencePiece` its `piece` (1),
//! `score` (2) and `type` (3); every other field is skipped by its wire type. Every length is
//! checked against the bytes that remain before anything is allocated, so a crafted file costs
//! at most a small multiple of its own size.

use alloc::string::String;
use alloc::vec::Vec;

/// Largest `tokenizer.model` accepted: real ones are a few MB (Gemma 3's is 4.7 MB).
pub const MAX_MODEL_BYTES: usize = 64 << 20;

/// Most pieces accepted (Gemma 3 has 262,144).
pub const MAX_PIECES: usize = 1 << 22;

/// A piece's type, as `sentencepiece_model.proto` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    /// A normal piece (1, the default).
    Normal,
    /// The unknown piece (2).
    Unknown,
    /// A control piece such as `<s>` (3).
    Control,
    /// A user-defined piece (4).
    UserDefined,
    /// An unused piece (5).
    Unused,
    /// A byte piece `<0xNN>` (6).
    Byte,
}

impl PieceType {
    /// The type of a wire value; values the schema does not know read as [`PieceType::Normal`],
    /// as protobuf leaves an unknown proto2 enum value at the field's default.
    fn from_wire(v: u64) -> Self {
        match v {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }
}

/// One vocabulary entry of the model, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece's text.
    pub piece: String,
    /// Its score (0 when absent).
    pub score: f32,
    /// Its type.
    pub kind: PieceType,
}

/// Why a `tokenizer.model` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpmError {
    /// More bytes than [`MAX_MODEL_BYTES`].
    #[error("{0} bytes is too large (at most {MAX_MODEL_BYTES})")]
    TooLarge(usize),
    /// The data ends inside a field.
    #[error("truncated protobuf at byte {0}")]
    Truncated(usize),
    /// Something no protobuf encoder writes.
    #[error("malformed protobuf at byte {at}: {what}")]
    Malformed {
        /// Offset of the field.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A piece that is not UTF-8.
    #[error("piece {0} is not UTF-8")]
    NotUtf8(usize),
    /// More than [`MAX_PIECES`] pieces.
    #[error("more than {MAX_PIECES} pieces")]
    TooManyPieces,
    /// No pieces at all.
    #[error("no pieces")]
    Empty,
}

/// A cursor over protobuf bytes; `base` is the offset of `buf` in the whole file, for errors.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

/// A field's payload.
enum Field<'a> {
    Varint(u64),
    Fixed32([u8; 4]),
    Bytes(&'a [u8], usize),
    Other,
}

impl<'a> Reader<'a> {
    fn at(&self) -> usize {
        self.base + self.pos
    }

    fn varint(&mut self) -> Result<u64, SpmError> {
        let start = self.at();
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(SpmError::Truncated(self.at()));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(SpmError::Malformed { at: start, what: "varint longer than 64 bits" });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SpmError::Malformed { at: start, what: "varint longer than 64 bits" })
    }

    fn take(&mut self, n: u64) -> Result<(&'a [u8], usize), SpmError> {
        let left = self.buf.len() - self.pos;
        let n = usize::try_from(n).ok().filter(|&n| n <= left).ok_or(SpmError::Truncated(self.at()))?;
        let at = self.at();
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok((s, at))
    }

    /// The next field's number and payload, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, SpmError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.at();
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(SpmError::Malformed { at, what: "field number 0" });
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Other
            }
            2 => {
                let len = self.varint()?;
                let (s, at) = self.take(len)?;
                Field::Bytes(s, at)
            }
            5 => {
                let (s, _) = self.take(4)?;
                Field::Fixed32([s[0], s[1], s[2], s[3]])
            }
            _ => return Err(SpmError::Malformed { at, what: "unsupported wire type (group)" }),
        };
        Ok(Some((number, field)))
    }
}

/// Reads the pieces of a `tokenizer.model`, in id order.
///
/// # Errors
/// [`SpmError`] when the file is too large, truncated, malformed, has a piece that is not UTF-8,
/// or has no pieces.
pub fn pieces(data: &[u8]) -> Result<Vec<Piece>, SpmError> {
    if data.len() > MAX_MODEL_BYTES {
        return Err(SpmError::TooLarge(data.len()));
    }
    let mut top = Reader { buf: data, pos: 0, base: 0 };
    let mut out = Vec::new();
    while let Some((number, field)) = top.field()? {
        let (1, Field::Bytes(msg, base)) = (number, field) else {
            continue;
        };
        if out.len() == MAX_PIECES {
            return Err(SpmError::TooManyPieces);
        }
        let mut r = Reader { buf: msg, pos: 0, base };
        let mut piece: &[u8] = &[];
        let mut score = 0.0f32;
        let mut kind = PieceType::Normal;
        while let Some((number, field)) = r.field()? {
            match (number, field) {
                (1, Field::Bytes(s, _)) => piece = s,
                (2, Field::Fixed32(b)) => score = f32::from_le_bytes(b),
                (3, Field::Varint(v)) => kind = PieceType::from_wire(v),
                (1..=3, _) => {
                    return Err(SpmError::Malformed { at: r.at(), what: "SentencePiece field of the wrong wire type" });
                }
                _ => {}
            }
        }
        let piece = core::str::from_utf8(piece).map_err(|_| SpmError::NotUtf8(out.len()))?;
        out.push(Piece { piece: piece.into(), score, kind });
    }
    if out.is_empty() {
        return Err(SpmError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn piece_msg(text: &str, score: f32, kind: u8) -> Vec<u8> {
        let mut m = vec![0x0a, u8::try_from(text.len()).unwrap_or(0)];
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        m.extend_from_slice(&[0x18, kind]);
        m
    }

    fn model(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            out.push(0x0a);
            out.push(u8::try_from(p.len()).unwrap_or(0));
            out.extend_from_slice(p);
        }
        // a trainer_spec (field 2) to skip
        out.extend_from_slice(&[0x12, 0x02, 0x08, 0x01]);
        out
    }

    #[test]
    fn reads_pieces() {
        let data = model(&[piece_msg("<unk>", 0.0, 2), piece_msg("▁a", -1.5, 1), piece_msg("<0x0A>", 0.0, 6)]);
        let p = pieces(&data).expect("valid");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].kind, PieceType::Unknown);
        assert_eq!(p[1].piece, "▁a");
        assert!((p[1].score - -1.5).abs() < f32::EPSILON);
        assert_eq!(p[2].kind, PieceType::Byte);
    }

    #[test]
    fn rejects_truncated() {
        let data = model(&[piece_msg("<unk>", 0.0, 2)]);
        for cut in 1..data.len() - 4 {
            let e = pieces(&data[..cut]).expect_err("truncated");
            assert!(matches!(e, SpmError::Truncated(_)), "{cut}: {e}");
        }
        assert_eq!(pieces(&[0x0a, 0xff, 0xff, 0xff, 0x0f]), Err(SpmError::Truncated(5)));
        assert_eq!(pieces(&[0x0a, 0x05, 0x0a]).expect_err("short").to_string(), "truncated protobuf at byte 2");
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(pieces(&[0x0b]), Err(SpmError::Malformed { .. })));
        assert!(matches!(
            pieces(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(SpmError::Malformed { .. })
        ));
        assert_eq!(pieces(&[]), Err(SpmError::Empty));
        assert_eq!(pieces(&[0x0a, 0x02, 0x0a, 0x00, 0x0a, 0x03, 0x0a, 0x01, 0xff]), Err(SpmError::NotUtf8(1)));
    }
}
