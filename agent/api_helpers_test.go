package agent

import "github.com/relaymesh/relaymesh/client"

// apiError is the body of every API error answer (package api writes it).
type apiError = client.Problem
