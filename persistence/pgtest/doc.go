// Package pgtest gives tests throwaway PostgreSQL databases.
//
// Tests of packages that need a database call New for a fresh, empty database;
// the package's TestMain calls Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The first New starts one cluster (persistence/pgcluster) in a temporary directory
// that all tests of the test binary share; Main stops it and removes the directory
// when the tests finish. When CAMPAIGN_TEST_DATABASE_URL is set, New instead
// creates its databases on that server, through the database the URL names, and
// no cluster is started.
//
// A cluster left behind by a test binary that was killed (go test -timeout, ^C) is
// stopped and removed by the next test binary that starts one.
//
// The package owns no goroutines.
package pgtest
