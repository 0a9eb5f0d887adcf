//! Search terms from Chinese (and mixed) text, with jieba's search mode: 婚礼摄影师 gives 婚礼,
//! 摄影, 摄影师, so a search for 摄影 finds it. The dictionary loads on first use only, so
//! functions and routes that never tokenise do not pay for it at cold start.

use std::sync::OnceLock;

use jieba_rs::Jieba;

static JIEBA: OnceLock<Jieba> = OnceLock::new();

/// Words too common to search by.
const STOPWORDS: &[&str] = &[
    "的", "了", "和", "与", "及", "或", "在", "是", "有", "我", "你",
];

/// Distinct lowercase terms of `text`, in first-seen order, at most `max`.
pub fn terms(text: &str, max: usize) -> Vec<String> {
    let jieba = JIEBA.get_or_init(Jieba::new);
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
