use thiserror::Error;

/// Everything that can go wrong turning bytes into messages and back.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error("malformed frame: {0}")]
    Decode(String),
    #[error("could not encode message: {0}")]
    Encode(String),
    #[error("frame has {0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
