//! The LaunchDaemon plist parses as a plist and carries the keys launchd needs.

use std::path::PathBuf;

#[test]
fn launchd_plist_is_well_formed_and_complete() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../launchd/com.sstop.sstopd.plist");
    let value = plist::Value::from_file(&path).unwrap();
    let d = value.as_dictionary().unwrap();
    let s = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| panic!("{k}"))
    };
    let b = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_boolean())
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(s("Label"), "com.sstop.sstopd");
    assert_eq!(s("UserName"), "root");
    assert!(b("RunAtLoad"));
    assert!(b("KeepAlive"));
    assert_eq!(s("StandardOutPath"), "/var/log/sstopd.log");
    assert_eq!(s("StandardErrorPath"), "/var/log/sstopd.log");
    let args: Vec<&str> = d
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert!(args[0].ends_with("/sstopd"), "{args:?}");
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("{flag}"));
        args[i + 1]
    };
    assert_eq!(after("--socket"), "/var/run/sstopd.sock");
    assert_eq!(after("--socket-group"), "sstop");
    // The daemon parses this as octal text; a launchd-managed socket would need decimal 432.
    assert_eq!(after("--socket-mode"), "0660");
    assert_eq!(u32::from_str_radix(after("--socket-mode"), 8).unwrap(), 432);
    assert!(
        d.get("Sockets").is_none(),
        "the daemon creates its own socket"
    );
}
