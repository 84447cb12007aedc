//! A data pipeline with run-time inputs: one graph type, many runs.
//!
//! Each run takes a text and a word length, and computes word counts, the
//! most frequent long word, and a summary line.
//!
//! ```text
//! cargo run --release -p fiber-examples --example pipeline
//! ```

use std::collections::HashMap;

use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[fiber]
fn counts(words: &[String]) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for w in words {
        *map.entry(w.clone()).or_insert(0) += 1;
    }
    map
}

#[fiber]
fn longest(counts: &HashMap<String, usize>, min_len: &usize) -> Option<(String, usize)> {
    counts
        .iter()
        .filter(|(w, _)| w.len() >= *min_len)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(w, n)| (w.clone(), *n))
}

#[fiber]
fn summary(
    words: &[String],
    counts: &HashMap<String, usize>,
    longest: &Option<(String, usize)>,
) -> String {
    let top = match longest {
        Some((w, n)) => format!("'{w}' x{n}"),
        None => "none".to_owned(),
    };
    format!(
        "{} words, {} distinct, most frequent long word: {top}",
        words.len(),
        counts.len()
    )
}

depends! {
    /// Word statistics over a text given at run time.
    pub graph WordStats(text: String, min_len: usize) {
        words(text);
        counts(words);
        longest(counts, min_len);
        summary(words, counts, longest);
    }
}

const TEXTS: &[(&str, &str)] = &[
    (
        "fox",
        "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox jumps again.",
    ),
    (
        "fibers",
        "Fibers park, fibers yield, fibers sleep. Workers steal fibers from workers.",
    ),
    ("empty", ""),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new()?;
    for (name, text) in TEXTS {
        let out = rt.run(WordStats::new(text.to_string(), 5))?;
        println!("{name}: {}", out.summary);
    }
    Ok(())
}
