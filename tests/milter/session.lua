-- session.lua - one SMTP session against mxsane-milter, driven by miltertest(8).
-- Used by tests/integration/20-milter-miltertest.sh and 23-milter-daemon.sh.
--
-- Parameters (miltertest -D name=value):
--   sock    milter socket, libmilter syntax (required)
--   ip      client address (default 192.0.2.10); name: client host name (default client.test)
--   helo    HELO name (default helo.test)
--   auth    when set: macro {auth_authen} with this value at MAIL (SASL login)
--   qid     when set: macro i (queue ID) at MAIL and RCPT
--   from    envelope sender as the MTA sends it (default <sender@ok-mx.mxs.test>)
--   rcpts   recipients, separated by spaces (default none)
--   eom     "1": DATA after the recipients, then (unless DATA was answered otherwise than
--           continue) end of message, and report the added headers
--   abort   "1": abort the transaction after the recipients instead (SMTP RSET)
--   rcpts2  recipients of a second transaction on the same connection (after eom or abort),
--           same sender; it always ends with end of message; its lines start with "2:"
--   pause   seconds to sleep after connecting, before MAIL (tests of reload and SIGTERM)
--   legacy  "1": offer what an MTA without macro lists (SMFIF_SETSYMLIST) and without
--           SMFIP_NOCONNECT offers: the client then comes with CONNECT.  Otherwise every
--           action and step is offered, and when the milter declines CONNECT
--           (SMFIP_NOCONNECT) the client comes as the macros {client_addr} and {client_name}
--           at MAIL, as Postfix and Sendmail send them when asked to
--
-- Prints one line per step on stdout:
--   mail <reply>             reply: continue | replycode | reject | tempfail | accept | other:N
--   rcpt <address> <reply>
--   data <reply>             (accept: the milter has nothing to add; no eom follows)
--   eom <reply>
--   header <value>           one per X-MXSane header added at end of message
--   abort                    the transaction was aborted
--   done
-- A Lua error (miltertest prints nothing for it) goes to stderr, exit status 1.

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

local function session()
	if sock == nil then
		error("no socket: run with -D sock=SPEC")
	end
	local conn = mt.connect(sock, 50, 0.1)
	if conn == nil then
		error("cannot connect to " .. sock)
	end
	if legacy == "1" then
		local acts = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
		             SMFIF_DELRCPT | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR
		local steps = SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY |
		              SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA |
		              SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
		              SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY |
		              SMFIP_NR_HDR | SMFIP_SKIP | SMFIP_RCPT_REJ
		check("negotiate", mt.negotiate(conn, 6, acts, steps))
	else
		check("negotiate", mt.negotiate(conn, nil, nil, nil))
	end
	local client = {}
	if mt.test_option(conn, SMFIP_NOCONNECT) then
		client = {"{client_addr}", ip or "192.0.2.10", "{client_name}", name or "client.test"}
	else
		check("conninfo", mt.conninfo(conn, name or "client.test", ip or "192.0.2.10"))
		if reply(conn) ~= "continue" then
			error("connect was not accepted")
		end
	end
	check("helo", mt.helo(conn, helo or "helo.test"))
	if pause ~= nil then
		mt.sleep(tonumber(pause))
	end

	local mail = client
	if auth ~= nil then
		table.insert(mail, "{auth_authen}")
		table.insert(mail, auth)
	end
	if qid ~= nil then
		table.insert(mail, "i")
		table.insert(mail, qid)
	end
	if #mail > 0 then
		check("macro MAIL", mt.macro(conn, SMFIC_MAIL, table.unpack(mail)))
	end
	check("mailfrom", mt.mailfrom(conn, from or "<sender@ok-mx.mxs.test>"))
	local r = reply(conn)
	print("mail " .. r)
	if r ~= "continue" then
		mt.disconnect(conn)
		print("done")
		return
	end

	local function transaction(prefix, list, finish)
		local accepted = 0
		for rcpt in string.gmatch(list or "", "%S+") do
			if qid ~= nil then
				check("macro RCPT", mt.macro(conn, SMFIC_RCPT, "i", qid))
			end
			check("rcptto " .. rcpt, mt.rcptto(conn, rcpt))
			local rr = reply(conn)
			print(prefix .. "rcpt " .. rcpt .. " " .. rr)
			if rr == "continue" then
				accepted = accepted + 1
			end
		end
		if finish == "abort" then
			check("abort", mt.abort(conn))
			print(prefix .. "abort")
		elseif finish == "eom" and accepted > 0 then
			-- DATA first, as an MTA does: with nothing to add to the message the milter
			-- answers accept there, and then the MTA sends no end of message
			check("data", mt.data(conn))
			local dr = reply(conn)
			print(prefix .. "data " .. dr)
			if dr ~= "continue" then
				return
			end
			check("eom", mt.eom(conn))
			print(prefix .. "eom " .. reply(conn))
			for i = 0, 40 do
				local h = mt.getheader(conn, "X-MXSane", i)
				if h == nil then
					break
				end
				print(prefix .. "header " .. h)
			end
		end
	end

	local finish = nil
	if abort == "1" then
		finish = "abort"
	elseif eom == "1" then
		finish = "eom"
	end
	transaction("", rcpts, finish)

	if rcpts2 ~= nil then
		check("mailfrom 2", mt.mailfrom(conn, from or "<sender@ok-mx.mxs.test>"))
		r = reply(conn)
		print("2:mail " .. r)
		if r == "continue" then
			transaction("2:", rcpts2, "eom")
		end
	end
	mt.disconnect(conn)
	print("done")
end

local ok, err = pcall(session)
if not ok then
	io.stderr:write("session.lua: " .. tostring(err) .. "\n")
	os.exit(1)
end
