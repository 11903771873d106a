-- compile-heavy: many distinct functions, each with a hot loop LuaJIT traces
local n = tonumber(arg and arg[1]) or 3000
local total = 0
for i = 1, n do
  local src = string.format([[
    local k = %d
    return function(m)
      local s = 0
      for j = 1, m do
        if j %% 3 == 0 then s = s + j * k else s = s - (j + %d) end
      end
      return s
    end]], i, i % 7)
  local f = loadstring(src)()
  total = total + f(200)
end
print(total)
