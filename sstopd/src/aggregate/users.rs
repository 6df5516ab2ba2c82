//! uid → user name from an `/etc/passwd`-format file, cached; unknown uids show as numbers.

use std::collections::HashMap;
use std::path::PathBuf;

pub struct UserNames {
    path: PathBuf,
    names: HashMap<u32, String>,
    loaded: bool,
    /// Reloads done for uids missing from the file (bounded: a file without the uid
    /// must not be re-read for every process).
    misses: u32,
}

const MAX_RELOADS: u32 = 8;

impl UserNames {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UserNames {
            path: path.into(),
            names: HashMap::new(),
            loaded: false,
            misses: 0,
        }
    }

    pub fn name(&mut self, uid: u32) -> String {
        if !self.loaded {
            self.reload();
        }
        if let Some(n) = self.names.get(&uid) {
            return n.clone();
        }
        // A user added since we read the file: one more look, a bounded number of times.
        if self.misses < MAX_RELOADS {
            self.misses += 1;
            self.reload();
            if let Some(n) = self.names.get(&uid) {
                return n.clone();
            }
        }
        let number = uid.to_string();
        self.names.insert(uid, number.clone());
        number
    }

    fn reload(&mut self) {
        self.loaded = true;
        let text = std::fs::read(&self.path).unwrap_or_default();
        for (uid, name) in parse_passwd(&String::from_utf8_lossy(&text)) {
            self.names.insert(uid, name);
        }
    }
}

/// `name:x:uid:gid:...` lines; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n:x:5:5::/:\nbob:x:notanumber:1::/:\n";
        assert_eq!(
            parse_passwd(text),
            vec![(0, "root".to_string()), (1000, "alice".to_string())]
        );
    }

    #[test]
    fn unknown_uid_is_its_number_and_missing_file_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "root:x:0:0::/:\n").unwrap();
        let mut users = UserNames::new(&path);
        assert_eq!(users.name(0), "root");
        assert_eq!(users.name(4242), "4242");
        let mut none = UserNames::new(dir.path().join("missing"));
        assert_eq!(none.name(0), "0");
    }
}
