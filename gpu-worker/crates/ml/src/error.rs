//! The library's error type: every bad input (corrupt file, wrong hash, wrong shape, non-finite
//! value, proof for another root) is reported as one of these, never as a panic.

use std::path::PathBuf;

/// Errors returned by the worker's ML core.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
	#[error("cannot access {path}: {source}")]
	Io {
		path: PathBuf,
		#[source]
		source: std::io::Error,
	},
	#[error("invalid safetensors data: {0}")]
	Safetensors(String),
	#[error("{what}: content hash mismatch (expected {expected}, found {actual})")]
	HashMismatch { what: String, expected: String, actual: String },
	#[error("tensor `{name}` has shape {actual:?}, the architecture expects {expected:?}")]
	ShapeMismatch { name: String, expected: Vec<usize>, actual: Vec<usize> },
	#[error("tensor `{0}` is missing")]
	MissingTensor(String),
	#[error("tensor `{0}` is not part of the architecture")]
	UnexpectedTensor(String),
	#[error("tensor `{name}` holds a non-finite value ({value}) at index {index}")]
	NonFinite { name: String, index: usize, value: f32 },
	#[error("invalid Merkle proof: {0}")]
	InvalidProof(String),
	#[error("unknown or malformed architecture id `{id}`: {reason}")]
	Architecture { id: String, reason: String },
	#[error("invalid dataset: {0}")]
	Data(String),
	#[error("invalid compressed update: {0}")]
	Compression(String),
	#[error("invalid argument: {0}")]
	InvalidArgument(String),
	/// What is to be judged is judged by held-out data alone, and there is none.
	#[error("no held-out data to judge by: {0}")]
	HeldOutMissing(String),
	#[error("stopped before the end: {0}")]
	Stopped(String),
	#[error("libtorch: {0}")]
	Torch(#[from] tch::TchError),
	#[error("invalid JSON: {0}")]
	Json(#[from] serde_json::Error),
	#[error(transparent)]
	Digest(#[from] agora_core::ParseDigestError),
	#[error(transparent)]
	State(#[from] agora_core::state::StateError),
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, WorkerError>;

impl From<agora_core::merkle::MerkleError> for WorkerError {
	fn from(error: agora_core::merkle::MerkleError) -> Self {
		use agora_core::merkle::MerkleError;
		match error {
			MerkleError::InvalidTree(reason) => WorkerError::InvalidArgument(reason),
			MerkleError::InvalidProof(reason) => WorkerError::InvalidProof(reason),
		}
	}
}

impl WorkerError {
	/// Wraps an I/O error with the path it happened on, so the message says which file.
	pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
		WorkerError::Io { path: path.into(), source }
	}
}

/// Reads a whole file, naming the file in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
	std::fs::read(path).map_err(|e| WorkerError::io(path, e))
}

/// Writes a whole file (creating parent directories), naming the file in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
	if let Some(parent) = path.parent() {
		if !parent.as_os_str().is_empty() {
			std::fs::create_dir_all(parent).map_err(|e| WorkerError::io(parent, e))?;
		}
	}
	std::fs::write(path, bytes).map_err(|e| WorkerError::io(path, e))
}
