// Command relaymesh is the relaymesh agent: see `relaymesh help`.
package main

import (
	"os"

	"github.com/relaymesh/relaymesh/agent"
)

func main() { os.Exit(agent.Main(os.Args[1:])) }
