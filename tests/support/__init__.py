"""What tests share that is not a fixture: paths, pod and policy builders, the real server as a
process, fakes. Test modules and conftest.py import from here; nothing here imports a test
module or a conftest (tests/test_test_layout.py checks both)."""
