//! Text for Agora's language models, from raw documents to the token shards a job trains on:
//!
//! - [`corpus`]: documents read as a stream (plain text, JSONL, and the English prose of
//!   Python's documentation as Debian's `python3.11-doc` ships it), never a whole corpus in
//!   memory;
//! - [`tokenizer`]: a byte-level BPE tokenizer (Hugging Face `tokenizers`) trained on a corpus
//!   and named by the hash of its JSON;
//! - [`prepare`]: documents tokenized into fixed windows and written as content-addressed
//!   shards (the `prepare-data` format), a held-out share set aside.

pub mod corpus;
mod error;
pub mod prepare;
pub mod tokenizer;

pub use error::{Result, TextError};
