-- trilink.lua: Wireshark/tshark dissector for trilink frames in relay captures
-- (edge/recorder.py: Ethernet/IPv4/UDP, relay port 47300, link i on 47301+i;
-- frame layout: docs/PROTOCOL.md section 1).
--   tshark -X lua_script:tools/trilink.lua -r relay.pcapng -Y trilink
--   Wireshark: copy to ~/.local/lib/wireshark/plugins/
local p = Proto("trilink", "trilink relay frame")
-- The type names are binding.MSG_NAMES (native/c/wire.h); tests/test_protocol_tables.py checks this table.
local types = {[0x01] = "HELLO", [0x02] = "HEARTBEAT", [0x03] = "TIME_SYNC_REQ", [0x04] = "TIME_SYNC_RESP",
               [0x10] = "TRACK_REPORT", [0x11] = "PICTURE", [0x12] = "KEYFRAME_REQ", [0x20] = "WARNING",
               [0x21] = "WARNING_ACK", [0x30] = "STATS", [0x31] = "DELIVERY"}
local f = {
  version = ProtoField.uint8("trilink.version", "Version"),
  flags = ProtoField.uint8("trilink.flags", "Flags", base.HEX),
  src = ProtoField.uint8("trilink.src", "Source node"),
  dst = ProtoField.uint8("trilink.dst", "Destination node"),
  type = ProtoField.uint8("trilink.type", "Type", base.HEX, types),
  key_id = ProtoField.uint8("trilink.key_id", "Key id"),
  seq = ProtoField.uint16("trilink.seq", "Sequence"),
  counter = ProtoField.uint64("trilink.counter", "Counter"),
  length = ProtoField.uint16("trilink.length", "Payload length"),
  payload = ProtoField.bytes("trilink.payload", "Payload"),
  tag = ProtoField.bytes("trilink.tag", "Tag"),
  crc = ProtoField.uint32("trilink.crc", "CRC-32", base.HEX),
}
p.fields = f

function p.dissector(buf, pinfo, tree)
  if buf:len() < 28 then return 0 end
  pinfo.cols.protocol = "trilink"
  local t = tree:add(p, buf())
  local len = buf(14, 2):le_uint()
  t:add(f.version, buf(0, 1)); t:add(f.flags, buf(1, 1)); t:add(f.src, buf(2, 1)); t:add(f.dst, buf(3, 1))
  t:add(f.type, buf(4, 1)); t:add(f.key_id, buf(5, 1)); t:add_le(f.seq, buf(6, 2))
  t:add_le(f.counter, buf(8, 4):le_uint64() + buf(12, 2):le_uint64() * 4294967296):set_len(6)
  t:add_le(f.length, buf(14, 2))
  if 28 + len == buf:len() then
    if len > 0 then t:add(f.payload, buf(16, len)) end
    t:add(f.tag, buf(16 + len, 8)); t:add_le(f.crc, buf(24 + len, 4))
  end
  local name = types[buf(4, 1):uint()] or string.format("0x%02x", buf(4, 1):uint())
  pinfo.cols.info = string.format("%s %d -> %d seq %d len %d", name, buf(2, 1):uint(), buf(3, 1):uint(),
                                  buf(6, 2):le_uint(), len)
  return buf:len()
end

DissectorTable.get("udp.port"):add("47300-47555", p)
