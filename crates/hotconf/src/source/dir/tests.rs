use super::*;

#[test]
fn globs() {
    let cases = [
        ("*.yaml", "a.yaml", true),
        ("*.yaml", "a.yml", false),
        ("*.{yaml,yml}", "a.yml", true),
        ("app-?.toml", "app-1.toml", true),
        ("app-?.toml", "app-12.toml", false),
        ("*", "", true),
        ("#*#", "#notes#", true),
        ("*~", "app.toml~", true),
        ("?.yaml", "é.yaml", true),
        ("??.yaml", "é.yaml", false),
        ("*é*", "café.toml", true),
        ("*.toml", "café.yaml", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false),
        ("#*#", "#", false),
        ("#*#", "##", true),
        ("4913", "4913", true),
        ("4913", "49130", false),
        ("*", "é", true),
        ("{a,b}.toml", "b.toml", true),
        ("{a,b}.toml", "c.toml", false),
        ("x{a,b}", "xb", true),
        ("x{a,b}", "yb", false),
        ("é*", "éa", true),
        ("*é", "aè", false),
        ("a", "", false),
        ("", "a", false),
        ("", "", true),
    ];
    for (glob, name, expected) in cases {
        assert_eq!(glob_match(glob, name), expected, "{glob} vs {name}");
    }
}

#[test]
fn litter_is_recognised() {
    for name in [
        ".app.toml.swp",
        "app.toml~",
        "4913",
        "..data_tmp",
        ".#app.toml",
        "x.tmp",
    ] {
        assert!(is_litter(name), "{name}");
    }
    assert!(!is_litter("app.toml"));
}

#[cfg(all(feature = "yaml", feature = "json"))]
#[test]
fn dir_lists_config_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "b.yaml",
        "a.toml",
        "c.json",
        "notes.txt",
        "a.toml~",
        ".hidden.yaml",
    ] {
        fs::write(dir.path().join(name), "x = 1").unwrap();
    }
    fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let names: Vec<_> = Dir::new(dir.path())
        .list()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.toml", "b.yaml", "c.json"]);
    let yaml_only = Dir::new(dir.path()).glob("*.yaml").list().unwrap();
    assert_eq!(yaml_only.len(), 1);
}

#[cfg(all(unix, feature = "toml"))]
#[test]
fn dir_follows_symlinked_files_and_skips_symlinked_directories() {
    use std::os::unix::fs::symlink;
    // A Kubernetes ConfigMap volume: `..data` links to a hidden directory of the files,
    // and each file name links through it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("..2026_12_02");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("a.toml"), "x = 1\n").unwrap();
    fs::write(data.join("b.toml"), "y = 2\n").unwrap();
    symlink("..2026_12_02", dir.path().join("..data")).unwrap();
    symlink("..data/a.toml", dir.path().join("a.toml")).unwrap();
    symlink("..data/b.toml", dir.path().join("b.toml")).unwrap();
    // A link to a directory is not a config file, whatever its name.
    fs::create_dir(dir.path().join("elsewhere")).unwrap();
    symlink("elsewhere", dir.path().join("c.toml")).unwrap();
    // A dangling link is listed: reading it is what reports it.
    symlink("gone.toml", dir.path().join("d.toml")).unwrap();
    let source = Dir::new(dir.path());
    let names: Vec<_> = source
        .list()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.toml", "b.toml", "d.toml"]);
    fs::remove_file(dir.path().join("d.toml")).unwrap();
    let documents = source.read(&Limits::default()).unwrap();
    let texts: Vec<&[u8]> = documents.iter().map(|d| &d.bytes[..]).collect();
    assert_eq!(texts, [&b"x = 1\n"[..], b"y = 2\n"]);
}

#[cfg(all(feature = "toml", feature = "watch"))]
#[test]
fn dir_reads_a_file_an_event_named_though_its_stamp_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.toml", "b.toml"] {
        fs::write(dir.path().join(name), "x = 1\n").unwrap();
    }
    // Old enough for the stamps to be trusted (see `cache::SETTLE`).
    std::thread::sleep(cache::SETTLE + std::time::Duration::from_millis(100));
    let source = Dir::new(dir.path());
    let limits = Limits::default();
    source.read(&limits).unwrap();
    source.read(&limits).unwrap();
    assert_eq!(
        source.files_read(),
        2,
        "unchanged stamps: nothing is read again"
    );
    source.named(&dir.path().join("b.toml"));
    source.read(&limits).unwrap();
    assert_eq!(source.files_read(), 3, "the named file is read again");
    source.read(&limits).unwrap();
    assert_eq!(source.files_read(), 3, "the mark is used up");
}

#[cfg(all(feature = "toml", not(feature = "yaml"), not(feature = "json")))]
#[test]
fn dir_default_glob_takes_only_compiled_in_formats() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.yaml", "a.toml", "c.json", "d.yml"] {
        fs::write(dir.path().join(name), "x = 1").unwrap();
    }
    let names: Vec<_> = Dir::new(dir.path())
        .list()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.toml"]);
    // An explicit glob still takes what it names; reading it then says why it fails.
    let yaml = Dir::new(dir.path()).glob("*.yaml").list().unwrap();
    assert_eq!(yaml.len(), 1);
    assert_eq!(Format::from_path(&yaml[0]), Some(Format::Yaml));
}

proptest::proptest! {
    /// `selects` takes a name's extension without parsing it as a path: the same answer as
    /// `Format::from_path` gives, in any case, with any number of dots.
    #[test]
    fn the_default_selection_is_the_path_extensions_format(name in "[.aTtoOmMlLyYjJsSn~#]{0,12}") {
        let by_path = !name.starts_with('.')
            && !is_litter(&name)
            && Format::from_path(Path::new(&name)).is_some_and(Format::is_compiled_in);
        proptest::prop_assert_eq!(Dir::new("d").selects(&name), by_path);
    }
}

#[test]
fn an_extension_names_its_format_in_any_case() {
    for (name, format) in [
        ("a.toml", Some(Format::Toml)),
        ("a.TOML", Some(Format::Toml)),
        ("a.Yml", Some(Format::Yaml)),
        ("a.yaml", Some(Format::Yaml)),
        ("a.b.json", Some(Format::Json)),
        ("a.json.bak", None),
        ("a.", None),
        ("toml", None),
        (".toml", None),
    ] {
        assert_eq!(Format::from_path(Path::new(name)), format, "{name}");
    }
}

#[test]
fn the_litter_prefilter_knows_exactly_the_literal_ends_of_the_default_patterns() {
    let set =
        |ends: &[bool; 256]| -> Vec<u8> { (0..=255u8).filter(|&b| ends[usize::from(b)]).collect() };
    // `.#*`, `#*#`, `4913`, `..data_tmp`, `~*` by their first byte; `*.swp`, `*.swx`,
    // `*~`, `*.tmp` by their last.
    assert_eq!(set(&LITTER_ENDS.0), b"#.4~");
    assert_eq!(set(&LITTER_ENDS.1), b"px~");
}

proptest::proptest! {
    #[test]
    fn litter_is_what_the_default_ignores_match(
        name in "(\\.#|#|~|4913|\\.\\.data_tmp|\\.)?[a-z49]{0,3}(\\.swp|\\.swx|~|#|\\.tmp|p|x)?",
    ) {
        let by_patterns = DEFAULT_IGNORES.iter().any(|pattern| glob_match(pattern, &name));
        proptest::prop_assert_eq!(is_litter(&name), by_patterns);
    }
}
