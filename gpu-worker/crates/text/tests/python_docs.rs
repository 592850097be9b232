//! The corpus Agora's language-model jobs are prepared from out of the box: the English prose of
//! Python's documentation, which Debian's `python3.11-doc` ships (`scripts/worker-setup.sh`
//! installs it; the repository carries none of it).

use agora_text::corpus::{Source, PYTHON_DOCS_DIR};

#[test]
fn python_documentation_gives_over_5_mb_of_english_prose() {
	let documents = Source::parse("python-docs")
		.documents()
		.unwrap_or_else(|e| panic!("{PYTHON_DOCS_DIR}: {e} (run scripts/worker-setup.sh)"));
	let (mut pages, mut bytes, mut words) = (0usize, 0usize, 0usize);
	let mut the = 0usize;
	// Lines that start with the interpreter's prompt: the pages hold thousands of doctest lines,
	// and prose mentions the prompt (``>>>``) only a few times.
	let mut prompts = 0usize;
	for page in documents {
		let page = page.unwrap();
		prompts += page.lines().filter(|line| line.trim_start().starts_with(">>>")).count();
		pages += 1;
		bytes += page.len();
		for word in page.split_whitespace() {
			words += 1;
			the += usize::from(word.eq_ignore_ascii_case("the"));
		}
	}
	assert!(prompts < 20, "{prompts} doctest lines kept");
	assert!(pages > 400, "{pages} pages");
	assert!(bytes > 5_000_000, "{bytes} bytes of prose");
	// English: "the" is about one word in twenty of English prose.
	let share = the as f64 / words as f64;
	assert!(share > 0.03, "'the' is {:.1}% of {words} words", share * 100.0);
	println!("{pages} pages, {bytes} bytes, {words} words of prose");
}
