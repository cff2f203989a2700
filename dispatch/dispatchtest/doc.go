// Package dispatchtest holds the small fixtures that tests of dispatch and
// of the packages built on it share, in the manner of net/http/httptest:
// square regions for test areas and a clock a test moves by hand.
package dispatchtest
