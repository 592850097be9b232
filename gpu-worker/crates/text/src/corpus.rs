//! Corpora as streams of documents: a file at a time, a document at a time, so that a corpus of
//! any size is prepared in bounded memory.
//!
//! Sources: plain text (a file, or every `.txt` file of a directory), JSON lines (the `text`
//! field of each line, the format most published corpora use), and the reStructuredText of
//! Python's documentation as Debian's `python3.11-doc` ships it (about 7 MB of English prose,
//! PSF licence), with its markup and code stripped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use crate::error::{Result, TextError};

/// Where Debian's `python3.11-doc` installs the reStructuredText sources of Python's
/// documentation (`scripts/worker-setup.sh` installs the package).
pub const PYTHON_DOCS_DIR: &str = "/usr/share/doc/python3.11/html/_sources";

/// A plain-text document ends at the first paragraph break after this many bytes (or at a line
/// end after twice as many), so that a file of any size streams.
const DOCUMENT_BYTES: usize = 64 * 1024;

/// Where documents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
	/// Plain UTF-8 text: a file, or every `.txt` file under a directory.
	Text(PathBuf),
	/// JSON lines: each line an object whose `text` field is one document.
	Jsonl(PathBuf),
	/// Python's documentation in reStructuredText (`*.rst.txt` under a directory), one document
	/// per page, markup and code stripped ([`strip_rest`]).
	PythonDocs(PathBuf),
}

impl Source {
	/// `python-docs` (Debian's copy), `python-docs:DIR`, a `.jsonl` file, or a text file or
	/// directory.
	pub fn parse(spec: &str) -> Source {
		if spec == "python-docs" {
			return Source::PythonDocs(PathBuf::from(PYTHON_DOCS_DIR));
		}
		if let Some(dir) = spec.strip_prefix("python-docs:") {
			return Source::PythonDocs(PathBuf::from(dir));
		}
		let path = PathBuf::from(spec);
		if path.extension().is_some_and(|e| e == "jsonl") {
			Source::Jsonl(path)
		} else {
			Source::Text(path)
		}
	}

	/// The source's documents, in a fixed order (files sorted by path).
	pub fn documents(&self) -> Result<Documents> {
		let (root, suffix, format) = match self {
			Source::Text(path) => (path, ".txt", Format::Text),
			Source::Jsonl(path) => (path, ".jsonl", Format::Jsonl),
			Source::PythonDocs(path) => (path, ".rst.txt", Format::Rest),
		};
		let files = files_under(root, suffix)?;
		if files.is_empty() {
			return Err(TextError::Corpus(format!(
				"no {suffix} files in {} (for python-docs: apt-get install python3.11-doc)",
				root.display()
			)));
		}
		Ok(Documents { files: files.into(), format, open: None })
	}
}

/// `root` itself if it is a file, else every file under it whose name ends with `suffix`,
/// sorted.
fn files_under(root: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
	let metadata = std::fs::metadata(root).map_err(TextError::io(root))?;
	if metadata.is_file() {
		return Ok(vec![root.to_path_buf()]);
	}
	let mut files = Vec::new();
	let mut pending = vec![root.to_path_buf()];
	while let Some(dir) = pending.pop() {
		for entry in std::fs::read_dir(&dir).map_err(TextError::io(&dir))? {
			let path = entry.map_err(TextError::io(&dir))?.path();
			if path.is_dir() {
				pending.push(path);
			} else if path.to_string_lossy().ends_with(suffix) {
				files.push(path);
			}
		}
	}
	files.sort();
	Ok(files)
}

#[derive(Clone, Copy, Debug)]
enum Format {
	Text,
	Jsonl,
	Rest,
}

/// The documents of a [`Source`]: an iterator that holds one open file and one document.
pub struct Documents {
	files: VecDeque<PathBuf>,
	format: Format,
	open: Option<OpenFile>,
}

struct OpenFile {
	path: PathBuf,
	lines: Lines<BufReader<File>>,
	line: usize,
}

impl Iterator for Documents {
	type Item = Result<String>;

	fn next(&mut self) -> Option<Result<String>> {
		loop {
			if self.open.is_none() {
				let path = self.files.pop_front()?;
				let file = match File::open(&path) {
					Ok(file) => file,
					Err(e) => return Some(Err(TextError::Io { path, source: e })),
				};
				self.open = Some(OpenFile { path, lines: BufReader::new(file).lines(), line: 0 });
			}
			let open = self.open.as_mut()?;
			let document = match self.format {
				Format::Text => next_text_document(open),
				Format::Jsonl => next_jsonl_document(open),
				Format::Rest => next_rest_document(open),
			};
			match document {
				Some(Ok(text)) if text.trim().is_empty() => continue,
				Some(result) => return Some(result),
				None => self.open = None,
			}
		}
	}
}

impl OpenFile {
	fn next_line(&mut self) -> Option<Result<String>> {
		let line = self.lines.next()?;
		self.line += 1;
		Some(line.map_err(|e| TextError::Io { path: self.path.clone(), source: e }))
	}
}

fn next_text_document(open: &mut OpenFile) -> Option<Result<String>> {
	let mut document = String::new();
	while let Some(line) = open.next_line() {
		let line = match line {
			Ok(line) => line,
			Err(e) => return Some(Err(e)),
		};
		let paragraph_break = line.trim().is_empty();
		document.push_str(&line);
		document.push('\n');
		if (paragraph_break && document.len() >= DOCUMENT_BYTES)
			|| document.len() >= 2 * DOCUMENT_BYTES
		{
			return Some(Ok(document));
		}
	}
	(!document.is_empty()).then_some(Ok(document))
}

fn next_jsonl_document(open: &mut OpenFile) -> Option<Result<String>> {
	loop {
		let line = match open.next_line()? {
			Ok(line) => line,
			Err(e) => return Some(Err(e)),
		};
		if line.trim().is_empty() {
			continue;
		}
		let malformed =
			|reason: String| TextError::Jsonl { path: open.path.clone(), line: open.line, reason };
		let value: serde_json::Value = match serde_json::from_str(&line) {
			Ok(value) => value,
			Err(e) => return Some(Err(malformed(e.to_string()))),
		};
		return Some(match value.get("text").and_then(|t| t.as_str()) {
			Some(text) => Ok(text.to_string()),
			None => Err(malformed("no string field `text`".into())),
		});
	}
}

fn next_rest_document(open: &mut OpenFile) -> Option<Result<String>> {
	let mut source = String::new();
	while let Some(line) = open.next_line() {
		match line {
			Ok(line) => {
				source.push_str(&line);
				source.push('\n');
			},
			Err(e) => return Some(Err(e)),
		}
	}
	(!source.is_empty()).then(|| Ok(strip_rest(&source)))
}

/// Directives whose bodies are code, tables of code or navigation: dropped with their bodies.
const SKIPPED_DIRECTIVES: &[&str] = &[
	"code-block",
	"sourcecode",
	"code",
	"literalinclude",
	"productionlist",
	"toctree",
	"testcode",
	"testoutput",
	"testsetup",
	"testcleanup",
	"doctest",
	"highlight",
	"index",
	"image",
	"figure",
	"csv-table",
	"raw",
	"only",
	"grammar-snippet",
	"audit-event-table",
	"availability",
	"impl-detail",
];

/// The prose of a reStructuredText page: section underlines, comments and targets, code
/// (literal blocks after `::`, doctest lines, code directives) and directive lines are dropped;
/// the bodies of other directives (the descriptions of functions and classes, notes) are kept;
/// inline markup is reduced to its text (``:func:`len` `` → `len`, `` `Title <link>`_ `` →
/// `Title`).
pub fn strip_rest(source: &str) -> String {
	let mut out = String::with_capacity(source.len() / 2);
	// Lines indented more than this belong to a block being dropped.
	let mut skipping_above: Option<usize> = None;
	let mut last_blank = true;
	for line in source.lines() {
		let indent = line.len() - line.trim_start().len();
		let text = line.trim();
		if let Some(base) = skipping_above {
			if text.is_empty() || indent > base {
				continue;
			}
			skipping_above = None;
		}
		if text.is_empty() {
			if !last_blank {
				out.push('\n');
				last_blank = true;
			}
			continue;
		}
		if text.starts_with(">>>") || text.starts_with("...") || is_underline(text) {
			continue;
		}
		if text == ".." || text.starts_with(".. ") {
			let directive = text[2..].trim_start().split_once("::").map(|(name, _)| name.trim());
			match directive {
				// A prose directive: its line goes (a signature, a note's title), its body stays.
				Some(name) if !SKIPPED_DIRECTIVES.contains(&name) => {},
				// A code directive, a comment, a target or a substitution: the block goes.
				_ => skipping_above = Some(indent),
			}
			continue;
		}
		if is_option_line(text) || text.starts_with("+-") || text.starts_with("+=") {
			continue;
		}
		let text = match text.strip_suffix("::") {
			// The literal block that follows is code.
			Some(before) => {
				skipping_above = Some(indent);
				let before = before.trim_end();
				if before.is_empty() {
					continue;
				}
				format!("{before}:")
			},
			None => text.to_string(),
		};
		out.push_str(&strip_inline(&text));
		out.push('\n');
		last_blank = false;
	}
	out
}

/// A section title's under- or overline: one punctuation character repeated.
fn is_underline(text: &str) -> bool {
	let mut chars = text.chars();
	let Some(first) = chars.next() else { return false };
	text.len() >= 3 && "=-~^*#+\"'`:._".contains(first) && chars.all(|c| c == first)
}

/// A directive's option (`:noindex:`, `:synopsis: ...`): a field name without spaces, not a
/// role (`:mod:`json``, which is prose).
fn is_option_line(text: &str) -> bool {
	text.strip_prefix(':').and_then(|rest| rest.split_once(':')).is_some_and(|(name, value)| {
		!name.is_empty() && !name.contains(' ') && !value.starts_with('`')
	})
}

/// Inline markup reduced to its text: roles, interpreted text, literals, links, emphasis and
/// escapes.
fn strip_inline(text: &str) -> String {
	let chars: Vec<char> = text.chars().collect();
	let mut out = String::with_capacity(text.len());
	let mut i = 0;
	while let Some(&c) = chars.get(i) {
		match c {
			// A role (`:func:`) just before interpreted text: dropped, the text stays.
			':' if role_end(&chars, i).is_some() => {
				i = role_end(&chars, i).unwrap_or(i + 1);
			},
			'`' => {
				let literal = chars.get(i + 1) == Some(&'`');
				let open = if literal { 2 } else { 1 };
				let close = find_closing(&chars, i + open, literal);
				let Some(end) = close else {
					i += 1;
					continue;
				};
				let inner: String = chars[i + open..end].iter().collect();
				let inner = if literal { inner } else { interpreted_text(&inner) };
				out.push_str(&inner);
				i = end + open;
				// A link's trailing `_` or `__`.
				while chars.get(i) == Some(&'_') {
					i += 1;
				}
			},
			'*' | '\\' => i += 1,
			_ => {
				out.push(c);
				i += 1;
			},
		}
	}
	out
}

/// Where the role starting at `start` (`:name:` followed by a backtick) ends.
fn role_end(chars: &[char], start: usize) -> Option<usize> {
	let mut i = start + 1;
	while let Some(&c) = chars.get(i) {
		if c == ':' {
			return (i > start + 1 && chars.get(i + 1) == Some(&'`')).then_some(i + 1);
		}
		if !(c.is_ascii_alphanumeric() || "-_.+".contains(c)) {
			return None;
		}
		i += 1;
	}
	None
}

fn find_closing(chars: &[char], from: usize, literal: bool) -> Option<usize> {
	(from..chars.len()).find(|&i| chars[i] == '`' && (!literal || chars.get(i + 1) == Some(&'`')))
}

/// `Title <target>` → `Title`; `~module.name` → `module.name`; `!name` → `name`.
fn interpreted_text(inner: &str) -> String {
	let text = match inner.rsplit_once(" <") {
		Some((title, target)) if target.ends_with('>') => title,
		_ => inner,
	};
	text.trim_start_matches(['~', '!']).to_string()
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn rest_markup_and_code_are_stripped_and_prose_kept() {
		let page = "\
:mod:`json` --- JSON encoder
============================

.. module:: json
   :synopsis: Encode and decode the JSON format.

.. index:: single: JSON

The :func:`dumps` function returns a *string*; see `the RFC <https://rfc.example>`_ and
``json.loads``. For example::

   >>> json.dumps([1, 2])
   '[1, 2]'

.. function:: dump(obj, fp)

   Serialize *obj* as a JSON formatted stream to :term:`file-like object` *fp*.

.. code-block:: python

   print('never prose')

>>> also_code()
.. _label:

Last words.
";
		let prose = strip_rest(page);
		assert_eq!(
			prose,
			"json --- JSON encoder\n\nThe dumps function returns a string; see the RFC and\n\
			 json.loads. For example:\n\nSerialize obj as a JSON formatted stream to \
			 file-like object fp.\n\nLast words.\n"
		);
	}

	#[test]
	fn text_and_jsonl_sources_stream_documents() {
		let dir = tempfile::tempdir().unwrap();
		let big: String = (0..5_000).map(|i| format!("line {i} of a long book\n\n")).collect();
		std::fs::write(dir.path().join("a.txt"), &big).unwrap();
		std::fs::write(dir.path().join("b.txt"), "A short note.\n").unwrap();
		std::fs::write(dir.path().join("ignored.md"), "not text").unwrap();
		let documents: Vec<String> = Source::parse(dir.path().to_str().unwrap())
			.documents()
			.unwrap()
			.collect::<Result<_>>()
			.unwrap();
		// The long file comes in pieces of about 64 KiB, cut at paragraph breaks, in order.
		assert!(documents.len() > 2);
		assert!(documents.iter().all(|d| d.len() <= 2 * DOCUMENT_BYTES));
		assert_eq!(documents[..documents.len() - 1].concat(), big);
		assert_eq!(documents.last().unwrap(), "A short note.\n");

		let jsonl = dir.path().join("corpus.jsonl");
		std::fs::write(&jsonl, "{\"text\": \"first\"}\n\n{\"text\": \"second\", \"id\": 2}\n")
			.unwrap();
		let source = Source::parse(jsonl.to_str().unwrap());
		assert_eq!(source, Source::Jsonl(jsonl.clone()));
		let documents: Vec<String> = source.documents().unwrap().collect::<Result<_>>().unwrap();
		assert_eq!(documents, vec!["first", "second"]);
		// A malformed line is an error that names it, not a silent skip.
		std::fs::write(&jsonl, "{\"text\": \"ok\"}\n{\"title\": 1}\n").unwrap();
		let errors: Vec<_> = source.documents().unwrap().filter_map(|d| d.err()).collect();
		assert!(matches!(errors.as_slice(), [TextError::Jsonl { line: 2, .. }]), "{errors:?}");
		// A directory with no text at all is an error too.
		let empty = tempfile::tempdir().unwrap();
		assert!(Source::parse(empty.path().to_str().unwrap()).documents().is_err());
	}
}
