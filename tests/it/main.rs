mod smoke {
    #[test]
    fn crate_links() {
        let _ = sluis::inspect::Limits::default();
    }
}
