//! Search text: NFKC normalisation, case folding and overlapping character bigrams (the CJK
//! bigrams of Lucene's analysers, applied to every script).
//!
//! A title is indexed under each distinct bigram of its folded form; a query of two or more
//! characters is looked up under one of its own bigrams and every entry found is checked by a
//! substring test on the folded title. So a listing is found exactly when its title contains the
//! query: `摄影师` finds `婚礼摄影师范`, and so does `影师`; `anon` finds `Canon`. No dictionary.

use icu_normalizer::ComposingNormalizerBorrowed;

/// NFKC: full-width letters and digits, compatibility ideographs and ligatures become their
/// plain forms (`Ｃａｎｏｎ` → `Canon`). Titles are stored in this form.
pub fn nfkc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfkc()
        .normalize(text)
        .into_owned()
}

/// The form searched: NFKC, case-folded (Unicode's full lowercase mapping plus the full case
/// foldings where lowercase is not enough for titles: `ß`/`ẞ` → `ss`, final `ς` → `σ`; NFKC
/// already maps `ſ` and the ligatures), NFKC again so the result stays normalised, every run of
/// white space one space, trimmed. `Straße` and `STRASSE` are one word.
pub fn fold(text: &str) -> String {
    let lower = nfkc(text).to_lowercase();
    let folded: String = if lower.contains(['ß', 'ς']) {
        lower.replace('ß', "ss").replace('ς', "σ")
    } else {
        lower
    };
    let folded = nfkc(&folded);
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The distinct overlapping bigrams of folded text, in first-seen order. Text of one character
/// has none (it cannot be searched).
pub fn bigrams(folded: &str) -> Vec<String> {
    let chars: Vec<char> = folded.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for pair in chars.windows(2) {
        let gram: String = pair.iter().collect();
        if !out.contains(&gram) {
            out.push(gram);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_normalises_width_case_and_spaces() {
        assert_eq!(fold("  Ｃａｎｏｎ　R5\t婚礼 "), "canon r5 婚礼");
        assert_eq!(fold("ＡＢＣ"), "abc");
        assert_eq!(fold("Straße ẞ"), "strasse ss");
        assert_eq!(fold("STRASSE"), "strasse");
        assert_eq!(fold("ΟΔΟΣ οδος"), "οδοσ οδοσ");
        assert_eq!(nfkc("ﬁ①"), "fi1");
    }

    #[test]
    fn bigrams_overlap_and_are_distinct() {
        assert_eq!(bigrams("婚礼摄影师"), ["婚礼", "礼摄", "摄影", "影师"]);
        assert_eq!(bigrams("哈哈哈"), ["哈哈"]);
        assert_eq!(bigrams("a b"), ["a ", " b"]);
        assert!(bigrams("摄").is_empty());
        assert!(bigrams("").is_empty());
    }

    #[test]
    fn every_substring_of_two_or_more_shares_a_bigram_with_the_title() {
        let title = fold("婚礼摄影师范 Canon");
        let grams = bigrams(&title);
        for q in ["摄影师", "影师", "礼摄影", "canon", "anon", "范 c"] {
            let q = fold(q);
            assert!(title.contains(&q), "{q}");
            assert!(bigrams(&q).iter().all(|g| grams.contains(g)), "{q}");
        }
    }
}
