//! Errors and warnings that point into a job file, and the byte-offset → line:column mapping.

use std::fmt;
use std::path::PathBuf;

/// One problem in a job file, located at a key.
///
/// `line` and `column` are 1-based (columns count characters, not bytes); `line == 0` means the
/// problem concerns the whole file (it could not be read). `key` is the dotted path of the key,
/// with 0-based array indices: `users.mappings[2].apply` is the third `[[users.mappings]]` entry.
/// An empty `key` means the problem is not tied to a key. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " {}:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Maps byte offsets of the TOML text to 1-based line and column.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// The whole text the index was built over.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based (line, column) of a byte offset; offsets past the end land on the last position.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (line, column)
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        self.position(offset).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let idx = LineIndex::new("a = 1\nné = \"x\"\n");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(4), (1, 5));
        assert_eq!(idx.position(6), (2, 1));
        // "né" is 3 bytes; the `=` after it is the 4th character.
        assert_eq!(idx.position(10), (2, 4));
        assert_eq!(idx.position(1000), (3, 1));
    }

    #[test]
    fn display_names_file_position_and_key() {
        let e = ConfigError {
            file: "path/job.toml".into(),
            line: 12,
            column: 9,
            key: "users.mappings[2].apply".into(),
            message: "expected \"always\" or \"create\", found \"sometimes\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "path/job.toml:12:9: users.mappings[2].apply: expected \"always\" or \"create\", found \"sometimes\""
        );
        let whole = ConfigError {
            line: 0,
            column: 0,
            key: String::new(),
            ..e
        };
        assert!(whole.to_string().starts_with("path/job.toml: expected"));
    }
}
