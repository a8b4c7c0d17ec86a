-- hostile.lua - one SMTP session with arbitrary (hostile) octets, for
-- tests/integration/60-milter-hostile.sh and 61-log-forging.sh, driven by miltertest(8).
--
-- Every string parameter is hex-encoded (two hex digits per octet) so that CR, LF, quotes,
-- control characters and invalid UTF-8 pass through miltertest -D unharmed:
--   sock     milter socket, libmilter syntax, plain (required)
--   helo     HELO name (hex; default "helo.test")
--   from     envelope sender as the MTA sends it (hex; default <s@ok-mx.mxs.test>)
--   rcptfile file with one hex-encoded recipient per line (as the MTA sends it, brackets
--            included); an empty line is an empty recipient
--   qid      macro i (plain), sent at MAIL and RCPT
-- Prints "helo <reply>", "mail <reply>", then "rcpt N <reply>" for recipient N (1-based),
-- "eom <reply>" when any recipient was accepted, and "done".  A Lua error goes to stderr,
-- exit status 1 (Debian's miltertest prints nothing for it).

local names = {
	[SMFIR_CONTINUE] = "continue",
	[SMFIR_REPLYCODE] = "replycode",
	[SMFIR_REJECT] = "reject",
	[SMFIR_TEMPFAIL] = "tempfail",
	[SMFIR_ACCEPT] = "accept",
}

local function reply(conn)
	local r = mt.getreply(conn)
	return names[r] or ("other:" .. tostring(r))
end

local function check(what, err)
	if err ~= nil then
		error(what .. ": " .. tostring(err))
	end
end

local function unhex(s)
	return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

local function session()
	if sock == nil then
		error("no socket: run with -D sock=SPEC")
	end
	local conn = mt.connect(sock, 50, 0.1)
	if conn == nil then
		error("cannot connect to " .. sock)
	end
	check("negotiate", mt.negotiate(conn, nil, nil, nil))
	-- the client: with CONNECT, or as MAIL macros when the milter declines CONNECT
	local mail = {}
	if mt.test_option(conn, SMFIP_NOCONNECT) then
		mail = {"{client_addr}", "192.0.2.10", "{client_name}", "client.test"}
	else
		check("conninfo", mt.conninfo(conn, "client.test", "192.0.2.10"))
		if reply(conn) ~= "continue" then
			error("connect was not accepted")
		end
	end
	check("helo", mt.helo(conn, helo and unhex(helo) or "helo.test"))
	print("helo " .. reply(conn))
	if qid ~= nil then
		table.insert(mail, "i")
		table.insert(mail, qid)
		check("macro RCPT", mt.macro(conn, SMFIC_RCPT, "i", qid))
	end
	if #mail > 0 then
		check("macro MAIL", mt.macro(conn, SMFIC_MAIL, table.unpack(mail)))
	end
	check("mailfrom", mt.mailfrom(conn, from and unhex(from) or "<s@ok-mx.mxs.test>"))
	local r = reply(conn)
	print("mail " .. r)
	if r ~= "continue" then
		mt.disconnect(conn)
		print("done")
		return
	end
	local accepted = 0
	if rcptfile ~= nil then
		local f = assert(io.open(rcptfile, "r"))
		local n = 0
		for l in f:lines() do
			n = n + 1
			check("rcptto " .. n, mt.rcptto(conn, unhex(l)))
			local rr = reply(conn)
			print("rcpt " .. n .. " " .. rr)
			if rr == "continue" then
				accepted = accepted + 1
			end
		end
		f:close()
	end
	if accepted > 0 then
		check("data", mt.data(conn))
		local dr = reply(conn)
		print("data " .. dr)
		if dr == "continue" then
			check("eom", mt.eom(conn))
			print("eom " .. reply(conn))
		end
	end
	mt.disconnect(conn)
	print("done")
end

local ok, err = pcall(session)
if not ok then
	io.stderr:write("hostile.lua: " .. tostring(err) .. "\n")
	os.exit(1)
end
