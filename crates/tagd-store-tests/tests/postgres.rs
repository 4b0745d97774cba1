tagd_store_tests::conformance!(postgres);
