//! The daemons' state files: written so that a crash never leaves a half-written one, and read
//! so that a corrupt one is reported with its path and moved aside, never wedging a duty.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

/// A state file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
	#[error("cannot write {path}: {source}")]
	Io {
		path: PathBuf,
		#[source]
		source: std::io::Error,
	},
	#[error("cannot encode state as JSON: {0}")]
	Json(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, StateError>;

fn io_error(path: &Path, source: std::io::Error) -> StateError {
	StateError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically: to a temporary file beside it, synced, then renamed
/// over `path` (and the directory synced), so a reader or a restart after a crash sees the old
/// content or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
	let directory = path.parent().unwrap_or_else(|| Path::new("."));
	std::fs::create_dir_all(directory).map_err(|e| io_error(directory, e))?;
	let mut name = path.file_name().unwrap_or_default().to_os_string();
	name.push(".tmp");
	let temporary = directory.join(name);
	let mut file = std::fs::File::create(&temporary).map_err(|e| io_error(&temporary, e))?;
	file.write_all(bytes).map_err(|e| io_error(&temporary, e))?;
	file.sync_all().map_err(|e| io_error(&temporary, e))?;
	drop(file);
	std::fs::rename(&temporary, path).map_err(|e| io_error(path, e))?;
	// The rename is durable once the directory is synced (not every platform can open one).
	if let Ok(dir) = std::fs::File::open(directory) {
		let _ = dir.sync_all();
	}
	Ok(())
}

/// [`write_atomic`] of `value` as JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
	write_atomic(path, &serde_json::to_vec(value)?)
}

/// A state file that could not be parsed, moved aside to `quarantined`.
#[derive(Debug, thiserror::Error)]
#[error("corrupt state file {path} ({reason}); moved to {quarantined}")]
pub struct CorruptState {
	pub path: PathBuf,
	pub quarantined: PathBuf,
	pub reason: String,
}

/// Reads a JSON state file: `Ok(None)` when there is none; a file that does not parse is
/// renamed to `<name>.corrupt` (kept for inspection) and reported, so the caller can redo the
/// work instead of failing on it forever.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> std::result::Result<Option<T>, CorruptState> {
	let bytes = match std::fs::read(path) {
		Ok(bytes) => bytes,
		Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
		Err(e) => return Err(quarantine(path, e.to_string())),
	};
	serde_json::from_slice(&bytes).map(Some).map_err(|e| quarantine(path, e.to_string()))
}

fn quarantine(path: &Path, reason: String) -> CorruptState {
	let mut name = path.file_name().unwrap_or_default().to_os_string();
	name.push(".corrupt");
	let quarantined = path.with_file_name(name);
	if let Err(e) = std::fs::rename(path, &quarantined) {
		tracing::warn!(path = %path.display(), "cannot move a corrupt state file aside: {e}");
	}
	CorruptState { path: path.to_path_buf(), quarantined, reason }
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn atomic_write_replaces_and_leaves_no_temporary() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("state/record.json");
		write_json(&path, &vec![1, 2, 3]).unwrap();
		write_json(&path, &vec![4]).unwrap();
		assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), Some(vec![4]));
		let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
			.unwrap()
			.map(|e| e.unwrap().file_name().into_string().unwrap())
			.collect();
		assert_eq!(names, vec!["record.json".to_string()]);
	}

	#[test]
	fn missing_file_is_none_and_corrupt_file_is_quarantined() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("verdict.json");
		assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
		// What a crash in the middle of a plain write would have left.
		std::fs::write(&path, b"{\"valid\": tr").unwrap();
		let error = read_json::<Vec<u32>>(&path).unwrap_err();
		assert!(error.to_string().contains("verdict.json"), "{error}");
		assert!(!path.exists(), "moved aside");
		assert!(error.quarantined.exists());
		// The duty is redone from scratch next time.
		assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
	}
}
