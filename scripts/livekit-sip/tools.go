//go:build tools

// Package tools pins LiveKit's SIP service (scripts/install-sip.sh builds it from here):
// `go install ...@version` cannot, as the module proxy refuses the module's version list.
package tools

import _ "github.com/livekit/sip/cmd/livekit-sip"
