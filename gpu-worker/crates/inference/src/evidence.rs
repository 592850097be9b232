//! The provider's evidence: every request's input and answer, per channel, in an append-only
//! log, kept so that it can prove any settled answer to its auditors.
//!
//! A record is `index u64 | input length u32 | input | answer length u32 | answer` (little
//! endian). The log is the provider's state too: replaying it gives the requests served and the
//! transcript head, so a restart resumes a channel where it stopped. A record torn by a crash is
//! cut off on replay (its request was never receipted, so nothing is lost).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use agora_p2p::query::TranscriptStep;
use anyhow::{bail, Context, Result};

use crate::receipt::{content_hash, transcript_start, transcript_step};

/// The largest record the log accepts back (an input within the protocol's bound and logits).
const MAX_FIELD: u32 = 16 << 20;

/// What a channel's log says: requests served and the transcript head after the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
	pub served: u64,
	pub head: [u8; 32],
}

/// The evidence an auditor asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
	pub steps: Vec<TranscriptStep>,
	pub input: Vec<u8>,
	pub output: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct EvidenceLog {
	dir: PathBuf,
}

struct Record {
	index: u64,
	input: Vec<u8>,
	output: Vec<u8>,
	/// Bytes of the record in the file.
	len: u64,
}

fn read_field(reader: &mut impl Read) -> Result<Option<Vec<u8>>> {
	let mut len = [0u8; 4];
	if !read_exact_or_eof(reader, &mut len)? {
		return Ok(None);
	}
	let len = u32::from_le_bytes(len);
	if len > MAX_FIELD {
		bail!("record field of {len} bytes");
	}
	let mut bytes = vec![0u8; len as usize];
	if !read_exact_or_eof(reader, &mut bytes)? {
		return Ok(None);
	}
	Ok(Some(bytes))
}

/// Fills `buffer`; `false` at the end of the file (also in the middle of `buffer`: a torn
/// record).
fn read_exact_or_eof(reader: &mut impl Read, buffer: &mut [u8]) -> Result<bool> {
	let mut filled = 0;
	while filled < buffer.len() {
		let read = reader.read(&mut buffer[filled..])?;
		if read == 0 {
			return Ok(false);
		}
		filled += read;
	}
	Ok(true)
}

fn read_record(reader: &mut impl Read) -> Result<Option<Record>> {
	let mut index = [0u8; 8];
	if !read_exact_or_eof(reader, &mut index)? {
		return Ok(None);
	}
	let Some(input) = read_field(reader)? else { return Ok(None) };
	let Some(output) = read_field(reader)? else { return Ok(None) };
	let len = 16 + input.len() as u64 + output.len() as u64;
	Ok(Some(Record { index: u64::from_le_bytes(index), input, output, len }))
}

impl EvidenceLog {
	pub fn open(dir: &Path) -> Result<Self> {
		std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
		Ok(EvidenceLog { dir: dir.to_path_buf() })
	}

	fn path(&self, channel: u64) -> PathBuf {
		self.dir.join(format!("channel-{channel}.log"))
	}

	/// Appends request `index`'s input and answer.
	pub fn append(&self, channel: u64, index: u64, input: &[u8], output: &[u8]) -> Result<()> {
		let path = self.path(channel);
		let mut file = OpenOptions::new()
			.create(true)
			.append(true)
			.open(&path)
			.with_context(|| format!("opening {}", path.display()))?;
		let mut record = Vec::with_capacity(16 + input.len() + output.len());
		record.extend_from_slice(&index.to_le_bytes());
		record.extend_from_slice(&(input.len() as u32).to_le_bytes());
		record.extend_from_slice(input);
		record.extend_from_slice(&(output.len() as u32).to_le_bytes());
		record.extend_from_slice(output);
		file.write_all(&record).with_context(|| format!("writing {}", path.display()))
	}

	/// Flushes the channel's log to disk (before its requests are settled: what is settled
	/// must survive a crash, or the provider could not prove it).
	pub fn sync(&self, channel: u64) -> Result<()> {
		match File::open(self.path(channel)) {
			Ok(file) => Ok(file.sync_all()?),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
			Err(e) => Err(e.into()),
		}
	}

	/// Drops the records after request `keep` (answers the client never receipted, superseded
	/// by a request put on chain as request `keep + 1`).
	pub fn truncate(&self, channel: u64, keep: u64) -> Result<()> {
		let path = self.path(channel);
		let file = match File::open(&path) {
			Ok(file) => file,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
			Err(e) => return Err(e.into()),
		};
		let mut reader = BufReader::new(file);
		let mut kept_len = 0u64;
		while let Some(record) = read_record(&mut reader)? {
			if record.index > keep {
				break;
			}
			kept_len += record.len;
		}
		if std::fs::metadata(&path)?.len() > kept_len {
			OpenOptions::new().write(true).open(&path)?.set_len(kept_len)?;
		}
		Ok(())
	}

	/// Replays the channel's log; cuts off a torn last record.
	pub fn replay(&self, channel: u64) -> Result<Replayed> {
		let path = self.path(channel);
		let mut replayed = Replayed { served: 0, head: transcript_start(channel) };
		let file = match File::open(&path) {
			Ok(file) => file,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(replayed),
			Err(e) => return Err(e.into()),
		};
		let mut reader = BufReader::new(file);
		let mut valid_len = 0u64;
		while let Some(record) = read_record(&mut reader)? {
			if record.index != replayed.served + 1 {
				bail!("{}: request {} follows {}", path.display(), record.index, replayed.served);
			}
			replayed.head = transcript_step(
				&replayed.head,
				record.index,
				&content_hash(&record.input),
				&content_hash(&record.output),
			);
			replayed.served = record.index;
			valid_len += record.len;
		}
		let file_len = std::fs::metadata(&path)?.len();
		if file_len > valid_len {
			tracing::warn!(channel, "cutting off a torn evidence record");
			OpenOptions::new().write(true).open(&path)?.set_len(valid_len)?;
		}
		Ok(replayed)
	}

	/// The steps of requests `first..=last` and the input and answer of `request`, if the log
	/// holds them all.
	pub fn evidence(
		&self,
		channel: u64,
		first: u64,
		last: u64,
		request: u64,
	) -> Result<Option<Evidence>> {
		let Some(span) = last.checked_sub(first) else { return Ok(None) };
		if !(first..=last).contains(&request) {
			return Ok(None);
		}
		let file = match File::open(self.path(channel)) {
			Ok(file) => file,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
			Err(e) => return Err(e.into()),
		};
		let mut reader = BufReader::new(file);
		let mut evidence = Evidence { steps: Vec::new(), input: Vec::new(), output: Vec::new() };
		while let Some(record) = read_record(&mut reader)? {
			if record.index < first {
				continue;
			}
			if record.index > last {
				break;
			}
			evidence.steps.push((content_hash(&record.input), content_hash(&record.output)));
			if record.index == request {
				evidence.input = record.input;
				evidence.output = record.output;
			}
		}
		let complete = evidence.steps.len() as u64 == span.saturating_add(1);
		Ok(complete.then_some(evidence))
	}
}

/// Whether `evidence` proves that request `request` of the batch `first..=last`, which moved
/// the transcript from `before` to `after`, had its input and answer.
pub fn evidence_matches(
	evidence: &Evidence,
	first: u64,
	request: u64,
	before: &[u8; 32],
	after: &[u8; 32],
) -> bool {
	let Some(offset) = request.checked_sub(first) else { return false };
	let Some(step) = evidence.steps.get(offset as usize) else { return false };
	if *step != (content_hash(&evidence.input), content_hash(&evidence.output)) {
		return false;
	}
	let mut head = *before;
	for (index, (input, output)) in (first..).zip(&evidence.steps) {
		head = transcript_step(&head, index, input, output);
	}
	head == *after
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_log_replays_proves_and_survives_a_torn_record() {
		let dir = tempfile::tempdir().unwrap();
		let log = EvidenceLog::open(dir.path()).unwrap();
		let mut head = transcript_start(5);
		for index in 1..=4u64 {
			let (input, output) = (vec![index as u8; 3], vec![9, index as u8]);
			log.append(5, index, &input, &output).unwrap();
			head = transcript_step(&head, index, &content_hash(&input), &content_hash(&output));
		}
		assert_eq!(log.replay(5).unwrap(), Replayed { served: 4, head });

		// The batch of requests 2..=4, auditing request 3.
		let mut before = transcript_start(5);
		before = transcript_step(&before, 1, &content_hash(&[1; 3]), &content_hash(&[9, 1]));
		let evidence = log.evidence(5, 2, 4, 3).unwrap().unwrap();
		assert_eq!((evidence.input.clone(), evidence.output.clone()), (vec![3; 3], vec![9, 3]));
		assert!(evidence_matches(&evidence, 2, 3, &before, &head));
		// Another answer, another transcript, a missing step: no proof.
		let mut lie = evidence.clone();
		lie.output = vec![9, 4];
		assert!(!evidence_matches(&lie, 2, 3, &before, &head));
		assert!(!evidence_matches(&evidence, 2, 3, &[0; 32], &head));
		let mut short = evidence.clone();
		short.steps.pop();
		assert!(!evidence_matches(&short, 2, 3, &before, &head));
		assert_eq!(log.evidence(5, 2, 6, 3).unwrap(), None, "requests never served");

		// A crash in the middle of a record: cut off, the rest stands.
		let path = dir.path().join("channel-5.log");
		let mut file = OpenOptions::new().append(true).open(&path).unwrap();
		file.write_all(&5u64.to_le_bytes()).unwrap();
		file.write_all(&[3, 0]).unwrap();
		drop(file);
		assert_eq!(log.replay(5).unwrap(), Replayed { served: 4, head });
		log.append(5, 5, &[1], &[2]).unwrap();
		assert_eq!(log.replay(5).unwrap().served, 5);

		// Requests 4 and 5 superseded by another request 4 put on chain.
		log.truncate(5, 3).unwrap();
		assert_eq!(log.replay(5).unwrap().served, 3);
		log.append(5, 4, &[8], &[]).unwrap();
		assert_eq!(log.evidence(5, 4, 4, 4).unwrap().unwrap().input, vec![8]);
		log.truncate(5, 9).unwrap();
		assert_eq!(log.replay(5).unwrap().served, 4);
	}
}
