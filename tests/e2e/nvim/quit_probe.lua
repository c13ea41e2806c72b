-- Headless Neovim starts `conductor lsp`, starts a build that then waits for an agent, writes
-- the server's pid, and quits with a plain `:qa` — what a user does. The test then checks that
-- no server process remains and that the build was halted (journaled, resumable).
local root = os.getenv("PROBE_ROOT")
local out = os.getenv("PROBE_OUT")
local cmd = vim.fn.json_decode(os.getenv("PROBE_SERVER"))
local result = {}

local ok, err = pcall(function()
  local client_id = vim.lsp.start_client({
    name = "conductor",
    cmd = cmd,
    root_dir = root,
    handlers = {
      ["workspace/configuration"] = function(_, params)
        local answers = {}
        for _ = 1, #params.items do
          table.insert(answers, vim.NIL)
        end
        return answers
      end,
    },
  })
  vim.cmd("edit " .. vim.fn.fnameescape(root .. "/.conductor/policy.yaml"))
  vim.lsp.buf_attach_client(vim.api.nvim_get_current_buf(), client_id)
  vim.wait(15000, function()
    local c = vim.lsp.get_client_by_id(client_id)
    return c ~= nil and c.initialized
  end, 50)
  local client = vim.lsp.get_client_by_id(client_id)
  result.pid = client.rpc.pid
  local build = vim.lsp.buf_request_sync(0, "workspace/executeCommand", {
    command = "conductor.build",
    arguments = { { goal = "Add a" } },
  }, 20000)
  for _, response in pairs(build or {}) do
    result.build = response.result
    result.build_error = response.err
  end
  -- quit once the build is really under way: its planning task waits for an agent
  result.waiting = vim.wait(30000, function()
    return vim.fn.glob(root .. "/.conductor/handoff/**/step_000.task.json") ~= ""
  end, 50)
end)
if not ok then
  result.error = tostring(err)
end
local fh = io.open(out, "w")
fh:write(vim.fn.json_encode(result))
fh:close()
vim.cmd("qa")
