-- MemberJoined and ApplicationSubmitted used to carry the identity number's blind index on the public topic; this
-- service never needed it. The inbox keeps no copy of it (membership now sends it only to the services that match
-- people by identity number, on its restricted topic).
UPDATE inbox SET envelope = envelope #- '{data,id_blind_index}'
WHERE source = '/union/membership' AND envelope->'data' ? 'id_blind_index';
