tagd_store_tests::conformance!(sqlite);
