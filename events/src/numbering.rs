//! The official heading numbers (GB/T 9704-2012 practice): level 1 `一、`, level 2 `（一）`, level 3
//! `1.`, level 4 `（1）`. Shared by the generated documents and the web app's report editor, so the
//! number a user sees while writing is the one the document prints.

/// Chinese numerals for heading numbers (一 … 九十九, then Arabic digits).
pub fn chinese_number(n: usize) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0 => DIGITS[0].to_owned(),
        1..=9 => DIGITS[n].to_owned(),
        10..=19 => format!("十{}", if n == 10 { "" } else { DIGITS[n - 10] }),
        20..=99 => format!("{}十{}", DIGITS[n / 10], if n.is_multiple_of(10) { "" } else { DIGITS[n % 10] }),
        _ => n.to_string(),
    }
}

/// The official heading numbers: level 1 `一、`, level 2 `（一）`, level 3 `1.`, level 4 `（1）`.
pub fn heading_number(level: u8, n: usize) -> String {
    match level {
        1 => format!("{}、", chinese_number(n)),
        2 => format!("（{}）", chinese_number(n)),
        3 => format!("{n}."),
        _ => format!("（{n}）"),
    }
}

/// The number of each heading of an outline, from the headings' levels in order: each level counts
/// on until a heading above it starts it again (`一、（一）（二）二、（一）`). Levels outside 1–4 are
/// taken as the nearest.
pub fn outline_numbers(levels: impl IntoIterator<Item = u8>) -> Vec<String> {
    let mut counts = [0usize; 6];
    levels
        .into_iter()
        .map(|level| {
            let level = level.clamp(1, 4);
            let l = usize::from(level);
            counts[l] += 1;
            counts[l + 1..].iter_mut().for_each(|n| *n = 0);
            heading_number(level, counts[l])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outline_counts_each_level_under_its_parent() {
        assert_eq!(
            outline_numbers([1, 2, 3, 3, 2, 1, 2, 1]),
            ["一、", "（一）", "1.", "2.", "（二）", "二、", "（一）", "三、"]
        );
        assert_eq!(outline_numbers([0, 9]), ["一、", "（1）"]);
    }

    #[test]
    fn heading_numbers_follow_the_official_order() {
        assert_eq!(heading_number(1, 1), "一、");
        assert_eq!(heading_number(1, 3), "三、");
        assert_eq!(heading_number(2, 5), "（五）");
        assert_eq!(heading_number(2, 10), "（十）");
        assert_eq!(heading_number(2, 12), "（十二）");
        assert_eq!(heading_number(2, 20), "（二十）");
        assert_eq!(heading_number(2, 47), "（四十七）");
        assert_eq!(heading_number(2, 120), "（120）");
        assert_eq!(heading_number(3, 2), "2.");
        assert_eq!(heading_number(4, 2), "（2）");
    }
}
