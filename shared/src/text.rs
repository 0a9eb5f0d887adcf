//! Search terms from Chinese (and mixed) text, with jieba's search mode: 婚礼摄影师 gives 婚礼,
//! 摄影, 摄影师, so a search for 摄影 finds it. The dictionary loads on first use only, so
//! functions and routes that never tokenise do not pay for it at cold start.
//!
//! `data/jieba-dict.txt` is jieba's own dictionary (MIT) cut to the 79,746 words of frequency 20 or
//! more: a fifth of the size and memory of the full 350,000, which put the listings function over
//! its size and memory budget. Rarer words are still segmented, by jieba's HMM, and the index and
//! the queries always use the same dictionary, so they agree.

use std::sync::OnceLock;

use jieba_rs::Jieba;

static JIEBA: OnceLock<Jieba> = OnceLock::new();

const DICTIONARY: &str = include_str!("../data/jieba-dict.txt");

fn jieba() -> &'static Jieba {
    // The dictionary is ours and checked by a test: it cannot fail to load at run time.
    JIEBA.get_or_init(|| {
        Jieba::with_dict(&mut DICTIONARY.as_bytes()).unwrap_or_else(|_| Jieba::empty())
    })
}

/// Words too common to search by.
const STOPWORDS: &[&str] = &[
    "的", "了", "和", "与", "及", "或", "在", "是", "有", "我", "你",
];

/// Distinct lowercase terms of `text`, in first-seen order, at most `max`.
pub fn terms(text: &str, max: usize) -> Vec<String> {
    let jieba = jieba();
    let lower = text.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for word in jieba.cut_for_search(&lower, true) {
        let word = word.word.trim();
        // Punctuation and spaces are no terms; neither is anything holding a key separator.
        let searchable = !word.is_empty() && word.chars().all(char::is_alphanumeric);
        if searchable && !STOPWORDS.contains(&word) && !out.iter().any(|t| t == word) {
            out.push(word.to_owned());
            if out.len() == max {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_loads() {
        assert!(Jieba::with_dict(&mut DICTIONARY.as_bytes()).is_ok());
        assert!(DICTIONARY.lines().count() > 70_000);
    }

    #[test]
    fn a_title_word_finds_the_longer_word() {
        let title = terms("婚礼摄影师，北京朝阳 Canon R5", 24);
        for expected in ["婚礼", "摄影", "摄影师", "canon", "r5"] {
            assert!(
                title.contains(&expected.to_owned()),
                "{expected} not in {title:?}"
            );
        }
        assert!(!title.iter().any(|t| t == "，" || t == " "));
        assert_eq!(terms("摄影", 24), ["摄影"]);
        assert!(terms("的了", 24).is_empty());
        assert_eq!(terms("婚礼摄影师", 1).len(), 1);
    }
}
