"""Creates two organizations on a running tagd and prints shell exports for the fuzz run.

Organization A is the one schemathesis acts as; organization B holds data A must never see.
"""
import base64
import json
import shlex
import sys
import urllib.request

base, admin = sys.argv[1], sys.argv[2]


def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def organization(name, user_prefix, label):
    admin_auth = {"authorization": f"Bearer {admin}"}
    corp = call("POST", "/admin/v1/orgs", {"name": name}, admin_auth)["corp_id"]
    app = call("POST", f"/admin/v1/orgs/{corp}/apps", {"name": f"{name} app"}, admin_auth)
    password = f"{name}-password"
    call("POST", f"/admin/v1/orgs/{corp}/basic-credentials",
         {"username": f"{name}-loyalty", "password": password}, admin_auth)
    token = call("POST", "/api/v5/auth/token",
                 {"app_id": app["app_id"], "app_secret": app["app_secret"]})["data"]["access_token"]
    v5 = {"authorization": f"Bearer {token}", "x-app-id": app["app_id"]}
    users = [f"{user_prefix}{i}" for i in range(1, 6)] + [str(900000 + i) for i in range(5)]
    for user in users:
        call("POST", "/api/v5/user/create", {"corp_id": corp, "user_id": user}, v5)
    group = call("POST", "/api/v5/entity/tags/group/create",
                 {"name": label, "variable_name": f"{user_prefix}flag", "description": "",
                  "attribute": "define", "category": "c", "corp_id": corp}, v5)["data"]["tags_group_id"]
    for user in users:
        call("POST", "/api/v5/entity/user/tags/assign",
             {"corp_id": corp, "tags_group_id": group, "user_id": user, "value": "True"}, v5)
    return {"corp": corp, "app": app["app_id"], "token": token, "user": f"{name}-loyalty",
            "password": password, "group": group, "users": users}


a = organization("orga", "alice", "VIP")
spare = organization("orgc", "carol", "Spare")
b = organization("orgb", "bobonly", "Bravo secret label")
markers = [b["corp"], b["app"], b["group"], "bobonly", "Bravo secret label", "orgb-loyalty"]
print(f"export TAGD_FUZZ_CORP_ID={a['corp']} TAGD_FUZZ_APP_ID={a['app']} TAGD_FUZZ_V5_TOKEN={a['token']}")
print(f"export TAGD_FUZZ_V2_USER={a['user']} TAGD_FUZZ_V2_PASSWORD={a['password']}")
print(f"export TAGD_FUZZ_SPARE_CORP_ID={spare['corp']}")
print(f"export TAGD_FUZZ_OTHER_ORG_MARKERS={shlex.quote(','.join(markers))}")
