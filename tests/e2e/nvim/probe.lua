-- Headless Neovim (0.7+) drives `conductor lsp` like a user would: open a broken policy.yaml
-- and a task file, wait for diagnostics, hover a key, run conductor.validate; write JSON out.
local root = os.getenv("PROBE_ROOT")
local out = os.getenv("PROBE_OUT")
local cmd = vim.fn.json_decode(os.getenv("PROBE_SERVER"))
local task_path = os.getenv("PROBE_TASK")
local result = { log = {} }

local function finish()
  local fh = io.open(out, "w")
  fh:write(vim.fn.json_encode(result))
  fh:close()
  vim.cmd("qa!")
end

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
      ["window/logMessage"] = function(_, params)
        table.insert(result.log, params.message)
      end,
    },
  })
  result.client_id = client_id

  vim.cmd("edit " .. vim.fn.fnameescape(root .. "/.conductor/policy.yaml"))
  local policy = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(policy, client_id)
  vim.cmd("edit " .. vim.fn.fnameescape(task_path))
  local task = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(task, client_id)

  vim.wait(20000, function()
    return #vim.diagnostic.get(policy) >= 2 and #vim.diagnostic.get(task) >= 1
  end, 50)

  local function collect(buf)
    local items = {}
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      table.insert(items, { lnum = d.lnum, col = d.col, end_col = d.end_col, code = d.code,
                            source = d.source, message = d.message, severity = d.severity })
    end
    table.sort(items, function(a, b) return a.lnum < b.lnum or (a.lnum == b.lnum and a.col < b.col) end)
    return items
  end
  result.policy = collect(policy)
  result.task = collect(task)

  local hover = vim.lsp.buf_request_sync(policy, "textDocument/hover", {
    textDocument = { uri = vim.uri_from_bufnr(policy) },
    position = { line = tonumber(os.getenv("PROBE_HOVER_LINE")), character = 4 },
  }, 10000)
  for _, response in pairs(hover or {}) do
    if response.result then
      result.hover = response.result.contents.value
    end
  end

  local validate = vim.lsp.buf_request_sync(policy, "workspace/executeCommand", {
    command = "conductor.validate",
    arguments = { vim.empty_dict() },
  }, 20000)
  for _, response in pairs(validate or {}) do
    result.validate = response.result
    result.validate_error = response.err
  end
  vim.wait(15000, function()
    for _, message in ipairs(result.log) do
      if message:find("ready", 1, true) then
        return true
      end
    end
    return false
  end, 50)
  vim.lsp.stop_client(client_id)
end)
if not ok then
  result.error = tostring(err)
end
finish()
