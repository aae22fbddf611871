package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionInfo describes the binary from its build information: the module version
// ("(devel)" for a build from a checkout, v1.2.3 for `go install …@v1.2.3`), the VCS
// revision and time when the build recorded them, and the Go version.
type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	Go         string `json:"go"`
}

// buildVersion reads the running binary's build information.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		v.Go = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the version on one line: "v1.2.3, commit 0123456789ab (2025-06-01T12:00:00Z,
// modified), go1.26.8".
func (v versionInfo) String() string {
	parts := []string{v.Version}
	if v.Commit != "" {
		commit := "commit " + v.Commit[:min(len(v.Commit), 12)]
		var notes []string
		if v.CommitTime != "" {
			notes = append(notes, v.CommitTime)
		}
		if v.Modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			commit += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, commit)
	}
	return strings.Join(append(parts, v.Go), ", ")
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print campaignctl's version (from its build information)",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offline: "true"},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if c.structured() {
				return c.print(v)
			}
			fmt.Fprintln(c.stdout, "campaignctl "+v.String())
			return nil
		}),
	}
}

func (c *cli) completionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the script that completes campaignctl's commands, flags and campaign ids in bash,
zsh or fish. Load it in the current shell, or install it once:

  source <(campaignctl completion bash)      # bash, or put it in ~/.bashrc
  campaignctl completion zsh > "${fpath[1]}/_campaignctl"
  campaignctl completion fish > ~/.config/fish/completions/campaignctl.fish

Bash needs the bash-completion package.`,
		ValidArgs:   []string{"bash", "zsh", "fish"},
		Args:        cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		Annotations: map[string]string{offline: "true"},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(c.stdout, true)
			case "zsh":
				return root.GenZshCompletion(c.stdout)
			}
			return root.GenFishCompletion(c.stdout, true)
		}),
	}
}

// completeCampaignIDs completes a campaign id argument from the server, when logged in;
// otherwise it offers nothing (and no file names).
func (c *cli) completeCampaignIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	server, err := normalizeServer(c.server) // completion runs without PersistentPreRunE
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c.server = server
	cl, err := c.authed()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	raws, err := allCampaigns(cmd.Context(), cl, campaignPage)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []string
	for _, r := range raws {
		var k campaign
		if json.Unmarshal(r, &k) == nil && strings.HasPrefix(k.ID, toComplete) {
			ids = append(ids, k.ID+"\t"+k.Name+" ("+k.Status+")")
		}
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}
