//! `/proc/<pid>/stat`: a process's state, parent and process group, and the live members of a
//! process group (to check that a VM or a build left nothing behind).

/// The fields of `/proc/<pid>/stat` the harness reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// One letter: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

impl ProcStat {
    /// Parses the text of `/proc/<pid>/stat`. The fields after the command name count from
    /// its closing parenthesis: the name may hold spaces and parentheses itself.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut f = rest.split_whitespace();
        let state = f.next()?.chars().next()?;
        let ppid = f.next()?.parse().ok()?;
        let pgrp = f.next()?.parse().ok()?;
        Some(ProcStat { state, ppid, pgrp })
    }

    /// `/proc/<pid>/stat` of a process, if it exists.
    pub fn read(pid: u32) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Neither a zombie nor dead.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// Live (non-zombie) processes whose process group is `pgid`, read from `/proc`.
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| ProcStat::read(*pid).is_some_and(|s| s.is_live() && s.pgrp == pgid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let s = ProcStat::parse("42 (qemu (x) y) S 7 42 42 0 -1 4194560").expect("parses");
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 7,
                pgrp: 42
            }
        );
        assert!(s.is_live());
        assert!(!ProcStat::parse("42 (z) Z 7 42").expect("parses").is_live());
        assert_eq!(ProcStat::parse("42 (cut) S 7"), None);
        let me = ProcStat::read(std::process::id()).expect("our own stat");
        assert!(me.is_live());
    }
}
