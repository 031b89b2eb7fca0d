//! Byte offsets (what the TOML parser reports) to the 1-based `line:col` people read.

/// Line starts of one text, so every diagnostic's position is a binary search, not a rescan.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line begins; `starts[0] == 0`.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column of a byte offset. The column counts characters, not bytes,
    /// because that is what an editor's cursor shows after a multi-byte character such as "é".
    /// An offset past the end (the parser points one past the last byte for "unexpected end of
    /// file") or inside a character is clamped instead of panicking.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // `starts` is sorted and starts with 0, so the partition point is at least 1.
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn first_char_is_one_one() {
        let idx = LineIndex::new("abc\ndef\n");
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(2), (1, 3));
    }

    #[test]
    fn newline_belongs_to_its_line_and_next_line_starts_at_col_one() {
        let idx = LineIndex::new("abc\ndef\n");
        assert_eq!(idx.line_col(3), (1, 4));
        assert_eq!(idx.line_col(4), (2, 1));
        assert_eq!(idx.line_col(6), (2, 3));
        // The position just after the final newline is an empty third line.
        assert_eq!(idx.line_col(8), (3, 1));
    }

    #[test]
    fn empty_lines_and_crlf() {
        let idx = LineIndex::new("a\r\n\r\nb");
        assert_eq!(idx.line_col(5), (3, 1));
        assert_eq!(idx.line_col(3), (2, 1));
    }

    #[test]
    fn column_counts_characters_not_bytes() {
        // "é" is 2 bytes, "€" 3 bytes, "🦀" 4 bytes: the "x" is the 5th character.
        let text = "# é€🦀x\nname = \"ü\" x";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(x, 2 + 2 + 3 + 4);
        assert_eq!(idx.line_col(x), (1, 6));
        let x2 = text.rfind('x').unwrap();
        assert_eq!(idx.line_col(x2), (2, 12));
    }

    #[test]
    fn out_of_range_and_mid_character_offsets_are_clamped() {
        let text = "é\n";
        let idx = LineIndex::new(text);
        // Offset 1 is inside "é": it maps to the start of that character.
        assert_eq!(idx.line_col(1), (1, 1));
        assert_eq!(idx.line_col(1000), (2, 1));
        assert_eq!(LineIndex::new("").line_col(5), (1, 1));
    }
}
