package testutil

import "os"

func testLogEnabled() bool { return os.Getenv("RTPKIT_TEST_LOG") != "" }
