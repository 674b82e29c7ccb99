"""Wire protocols over the service flows: CMP (RFC 4210/9480), EST (RFC 7030), the phone application formats."""
