use std::path::PathBuf;

/// What can go wrong turning text into token shards.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
	#[error("{path}: {source}")]
	Io { path: PathBuf, source: std::io::Error },
	#[error("{path}, line {line}: {reason}")]
	Jsonl { path: PathBuf, line: usize, reason: String },
	#[error("corpus: {0}")]
	Corpus(String),
	#[error("tokenizer: {0}")]
	Tokenizer(String),
	#[error("{what} hashes to {actual}, expected {expected}")]
	HashMismatch { what: String, expected: String, actual: String },
	#[error(transparent)]
	Ml(#[from] agora_ml::error::WorkerError),
}

pub type Result<T> = std::result::Result<T, TextError>;

impl TextError {
	pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TextError {
		let path = path.into();
		move |source| TextError::Io { path, source }
	}
}
